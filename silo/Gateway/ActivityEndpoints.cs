using Keystone.Activity;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.Silo.Gateway;

public sealed record OperatorsView(DateTimeOffset? CombinedWatermark, IReadOnlyList<OperatorStats> Partitions);

/// <summary>Queries of the real-time aggregations: per user, per video, per profile, and the operators themselves.</summary>
internal static class ActivityEndpoints
{
    public static void MapActivity(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/users/{id}/activity", async (string id, HttpRequest request, IClusterClient cluster) =>
        {
            if (Ids.Check(id, "user id") is { } bad) return bad;
            if (!TryTime(request, "from", out var from, out var problem) || !TryTime(request, "to", out var to, out problem)) return problem!;
            if (from is not null && to is not null && from >= to) return Problems.BadRequest("'from' must be earlier than 'to'");
            var view = await cluster.GetGrain<IUserGrain>(id).GetActivity(from, to);
            return view is null ? Problems.NotFound($"no activity for user '{id}'") : Results.Ok(view);
        }).WithTags("Activity").WithName("GetUserActivity")
          .WithSummary("A user's windows overlapping [from, to), current session and totals")
          .Produces<UserActivityView>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        app.MapGet("/v1/videos/{id}/stats", async (string id, IClusterClient cluster) =>
        {
            if (Ids.Check(id, "video id") is { } bad) return bad;
            var view = await cluster.GetGrain<IVideoGrain>(id).GetStats();
            return view is null ? Problems.NotFound($"no statistics for video '{id}'") : Results.Ok(view);
        }).WithTags("Activity").WithName("GetVideoStats")
          .WithSummary("A title's starts, completions, unique viewers, watch time and quality mix, per window and in total")
          .Produces<VideoStatsView>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        app.MapGet("/v1/profiles/{id}", async (string id, IClusterClient cluster) =>
        {
            if (Ids.Check(id, "profile id") is { } bad) return bad;
            var view = await cluster.GetGrain<IProfileGrain>(id).GetProfile();
            return view is null ? Problems.NotFound($"no activity for profile '{id}'") : Results.Ok(view);
        }).WithTags("Activity").WithName("GetProfile")
          .WithSummary("A profile's activity and its top genres (decayed watch minutes)")
          .Produces<ProfileView>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);

        app.MapGet("/v1/aggregation/operators", async (IClusterClient cluster) =>
        {
            var partitions = await PerPartition.Ask(cluster, key => cluster.GetGrain<IActivityOperatorGrain>(key).GetStats());
            var combined = await cluster.GetGrain<IWatermarkCoordinatorGrain>(0).GetWatermark();
            return Results.Ok(new OperatorsView(combined, partitions));
        }).WithTags("Activity").WithName("GetOperators")
          .WithSummary("Watermarks, checkpoints and counters of the window operators")
          .Produces<OperatorsView>();
    }

    private static bool TryTime(HttpRequest request, string name, out DateTimeOffset? value, out IResult? problem)
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
    public static IResult? Check(string id, string what) => EntityIds.Problem(id, what) is { } problem ? Problems.BadRequest(problem) : null;
}
