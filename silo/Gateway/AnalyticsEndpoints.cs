using System.Text.RegularExpressions;
using Keystone.Events;
using Keystone.Lake;
using Keystone.Silo.Hosting;

namespace Keystone.Silo.Gateway;

public sealed record AnalyticsQueryBody(string? Sql, string? From, string? To);

public sealed record LakeCompactBody(string? From, string? To, bool? IncludeOpen);

/// <summary>OLAP over the Parquet lake: guarded SQL, built-in reports, and compaction on demand.</summary>
internal static partial class AnalyticsEndpoints
{
    [GeneratedRegex("^[A-Za-z0-9_.:-]{1,128}$")]
    private static partial Regex Name();

    public static void MapAnalytics(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/analytics").WithTags("Analytics").RequireAuthorization(ScopePolicies.Read);

        group.MapPost("/query", async (AnalyticsQueryBody? body, IClusterClient cluster) =>
        {
            if (body is null) return Problems.BadRequest("body must be a JSON object: { \"sql\": \"SELECT ...\", \"from\": \"...\", \"to\": \"...\" }");
            if (!Range(body.From, body.To, out var from, out var to, out var problem)) return problem!;
            return await Run(() => cluster.GetGrain<IAnalyticsGrain>(0).Query(new AnalyticsQuery(body.Sql ?? "", from, to)));
        }).WithName("QueryLake").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Runs one read-only SELECT over the views events and activity_windows, limited to the hours of [from, to) (admin scope)")
          .Produces<AnalyticsResult>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapGet("/top-titles", async (HttpRequest request, IClusterClient cluster) =>
        {
            if (!Range(request.Query["from"], request.Query["to"], out var from, out var to, out var problem)) return problem!;
            var region = Optional(request, "region", out problem);
            if (problem is not null) return (IResult)problem;
            var device = Optional(request, "device_type", out problem);
            if (problem is not null) return (IResult)problem;
            if (!Problems.TryInt(request, "limit", 1, 1000, 10, out var limit, out problem)) return problem!;
            return await Run(() => cluster.GetGrain<IAnalyticsGrain>(0).TopTitles(from, to, region, device, limit));
        }).WithName("TopTitles").WithSummary("Most-played titles (video.play.started) in [from, to), optionally in one region and device type")
          .Produces<AnalyticsResult>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapGet("/ads", async (HttpRequest request, IClusterClient cluster) =>
        {
            if (!Range(request.Query["from"], request.Query["to"], out var from, out var to, out var problem)) return problem!;
            var campaign = Optional(request, "campaign", out problem);
            if (problem is not null) return (IResult)problem;
            if (campaign is null) return Problems.BadRequest("campaign: required");
            return await Run(() => cluster.GetGrain<IAnalyticsGrain>(0).Ads(campaign, from, to));
        }).WithName("AdsReport").WithSummary("Impressions, clicks and spend per hour of one campaign, from the lake")
          .Produces<AnalyticsResult>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        app.MapPost("/v1/lake/compact", async (LakeCompactBody? body, IClusterClient cluster) =>
        {
            if (body is null) return Problems.BadRequest("body must be a JSON object: { \"from\": \"...\", \"to\": \"...\", \"include_open\": false }");
            if (!Range(body.From, body.To, out var from, out var to, out var problem)) return problem!;
            return await Run(() => cluster.GetGrain<ILakeCompactorGrain>(0).Compact(from, to, body.IncludeOpen == true));
        }).WithTags("Analytics").WithName("CompactLake").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Compacts the sealed archive hours overlapping [from, to) into Parquet now (hours already compacted are skipped)")
          .Produces<CompactionReport>().ProducesProblem(StatusCodes.Status400BadRequest);
    }

    private static async Task<IResult> Run<T>(Func<Task<T>> call)
    {
        try
        {
            return Results.Ok(await call());
        }
        catch (ArgumentException e)
        {
            return Problems.BadRequest(e.Message);
        }
        catch (LakeUnavailableException e)
        {
            return new UnavailableProblem(e.Message);
        }
    }

    private static bool Range(string? rawFrom, string? rawTo, out DateTimeOffset from, out DateTimeOffset to, out BadRequestProblem? problem)
    {
        to = default;
        problem = null;
        if (!EventJson.TryParseTimestamp(rawFrom ?? "", out from))
            problem = Problems.BadRequest($"from: must be an ISO-8601 date-time with an offset, got '{rawFrom}'");
        else if (!EventJson.TryParseTimestamp(rawTo ?? "", out to))
            problem = Problems.BadRequest($"to: must be an ISO-8601 date-time with an offset, got '{rawTo}'");
        else if (to <= from)
            problem = Problems.BadRequest("to: must be later than from");
        return problem is null;
    }

    private static string? Optional(HttpRequest request, string name, out BadRequestProblem? problem)
    {
        problem = null;
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) return null;
        if (raw.Count > 1 || !Name().IsMatch(raw[0]!))
        {
            problem = Problems.BadRequest($"{name}: 1 to 128 letters, digits and _ . : -, got '{raw}'");
            return null;
        }
        return raw[0];
    }
}
