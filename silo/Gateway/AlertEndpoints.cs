using Keystone.Operations;
using Keystone.Silo.Hosting;

namespace Keystone.Silo.Gateway;

public sealed record AlertsView(DateTimeOffset? EvaluatedAt, double? BaselineEventsPerSecond, IReadOnlyList<AlertView> Alerts);

internal static class AlertEndpoints
{
    public static void MapAlerts(this IEndpointRouteBuilder app) =>
        app.MapGet("/v1/alerts", (AlertMonitor monitor) =>
        {
            var (alerts, baseline, at) = monitor.Current;
            return Results.Ok(new AlertsView(at, baseline, alerts));
        }).WithTags("Operations").WithName("GetAlerts")
          .WithSummary("The alert rules as last evaluated on this silo: event lag, processing p99, error rate, throughput against its baseline")
          .Produces<AlertsView>();
}
