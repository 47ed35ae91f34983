using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Silo.Hosting;
using Keystone.Topics;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record OperatorsView(DateTimeOffset? CombinedWatermark, IReadOnlyList<OperatorStats> Partitions);

/// <summary>Queries of the real-time aggregations: per user, per video, per profile, and the operators themselves.</summary>
internal static class ActivityEndpoints
{
    public static void MapActivity(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").WithTags("Activity").RequireAuthorization(ScopePolicies.Read);
        v1.MapGet("/users/{id}/activity", GetUserActivity).WithName("GetUserActivity")
          .WithSummary("A user's windows overlapping [from, to), current session and totals");
        v1.MapGet("/videos/{id}/stats", GetVideoStats).WithName("GetVideoStats")
          .WithSummary("A title's starts, completions, unique viewers, watch time and quality mix, per window and in total");
        v1.MapGet("/profiles/{id}", GetProfile).WithName("GetProfile")
          .WithSummary("A profile's activity and its top genres (decayed watch minutes)");
        v1.MapGet("/aggregation/operators", GetOperators).WithName("GetOperators")
          .WithSummary("Watermarks, checkpoints and counters of the window operators");
    }

    internal static async Task<Results<Ok<UserActivityView>, BadRequestProblem, NotFoundProblem>> GetUserActivity(string id, HttpRequest request, IClusterClient cluster)
    {
        if (Ids.Check(id, "user id") is { } bad) return bad;
        if (!TryTime(request, "from", out var from, out var problem) || !TryTime(request, "to", out var to, out problem)) return problem!;
        if (from is not null && to is not null && from >= to) return Problems.BadRequest("'from' must be earlier than 'to'");
        var view = await cluster.GetGrain<IUserGrain>(id).GetActivity(from, to);
        return view is null ? Problems.NotFound($"no activity for user '{id}'") : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<VideoStatsView>, BadRequestProblem, NotFoundProblem>> GetVideoStats(string id, IClusterClient cluster)
    {
        if (Ids.Check(id, "video id") is { } bad) return bad;
        var view = await cluster.GetGrain<IVideoGrain>(id).GetStats();
        return view is null ? Problems.NotFound($"no statistics for video '{id}'") : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<ProfileView>, BadRequestProblem, NotFoundProblem>> GetProfile(string id, IClusterClient cluster)
    {
        if (Ids.Check(id, "profile id") is { } bad) return bad;
        var view = await cluster.GetGrain<IProfileGrain>(id).GetProfile();
        return view is null ? Problems.NotFound($"no activity for profile '{id}'") : TypedResults.Ok(view);
    }

    internal static async Task<Ok<OperatorsView>> GetOperators(IClusterClient cluster)
    {
        var partitions = await PerPartition.Ask(cluster, key => cluster.GetGrain<IActivityOperatorGrain>(key).GetStats());
        var combined = await cluster.GetGrain<IWatermarkCoordinatorGrain>(0).GetWatermark();
        return TypedResults.Ok(new OperatorsView(combined, partitions));
    }

    private static bool TryTime(HttpRequest request, string name, out DateTimeOffset? value, out BadRequestProblem? problem)
    {
        value = null;
        problem = null;
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) return true;
        if (raw.Count > 1 || !EventJson.TryParseTimestamp(raw[0]!, out var parsed))
        {
            problem = Problems.BadRequest($"query parameter '{name}' must be an ISO-8601 date-time with an offset (e.g. 2024-12-26T12:00:00Z), got '{raw}'");
            return false;
        }
        value = parsed;
        return true;
    }
}

/// <summary>Entity ids in routes: bounded length, printable, no path characters (they end up in blob names).</summary>
internal static class Ids
{
    public static BadRequestProblem? Check(string id, string what) => EntityIds.Problem(id, what) is { } problem ? Problems.BadRequest(problem) : null;
}
