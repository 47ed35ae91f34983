using Microsoft.Extensions.Options;
using Keystone.Operations;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record StatusHistoryView(TimeSpan EvaluationInterval, DateTimeOffset From, IReadOnlyList<HistoryPoint> Points);

public sealed record AlertsView(DateTimeOffset? EvaluatedAt, double? BaselineEventsPerSecond, IReadOnlyList<AlertView> Alerts);

/// <summary>The alert rules as this silo last evaluated them.</summary>
internal static class AlertEndpoints
{
    public static void MapAlerts(this IEndpointRouteBuilder app)
    {
        var operations = app.MapGroup("/v1").WithTags("Operations").RequireAuthorization(ScopePolicies.Read);
        operations.MapGet("/alerts", GetAlerts).WithName("GetAlerts")
          .WithSummary("The alert rules as last evaluated on this silo: event lag, processing p99, error rate, throughput against its baseline");
        operations.MapGet("/status/history", GetStatusHistory).WithName("GetStatusHistory")
          .WithSummary("This silo's throughput (events/s) and event lag p99 per stage for each alert evaluation window of the last `minutes` (1-15, default 15): the status page's charts");
    }

    internal static Ok<AlertsView> GetAlerts(AlertMonitor monitor)
    {
        var (alerts, baseline, at) = monitor.Current;
        return TypedResults.Ok(new AlertsView(at, baseline, alerts));
    }

    internal static Results<Ok<StatusHistoryView>, BadRequestProblem> GetStatusHistory(HttpRequest request, AlertMonitor monitor, TimeProvider time, IOptions<AlertOptions> options)
    {
        if (!Problems.TryInt(request, "minutes", 1, (int)AlertMonitor.HistoryRetention.TotalMinutes, (int)AlertMonitor.HistoryRetention.TotalMinutes, out var minutes, out var problem))
            return problem!;
        var from = time.GetUtcNow() - TimeSpan.FromMinutes(minutes);
        return TypedResults.Ok(new StatusHistoryView(options.Value.EvaluationInterval, from, [.. monitor.History.Where(p => p.At >= from)]));
    }
}
