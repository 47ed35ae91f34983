using Keystone.Operations;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record AlertsView(DateTimeOffset? EvaluatedAt, double? BaselineEventsPerSecond, IReadOnlyList<AlertView> Alerts);

/// <summary>The alert rules as this silo last evaluated them.</summary>
internal static class AlertEndpoints
{
    public static void MapAlerts(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1").WithTags("Operations").RequireAuthorization(ScopePolicies.Read)
          .MapGet("/alerts", GetAlerts).WithName("GetAlerts")
          .WithSummary("The alert rules as last evaluated on this silo: event lag, processing p99, error rate, throughput against its baseline");
    }

    internal static Ok<AlertsView> GetAlerts(AlertMonitor monitor)
    {
        var (alerts, baseline, at) = monitor.Current;
        return TypedResults.Ok(new AlertsView(at, baseline, alerts));
    }
}
