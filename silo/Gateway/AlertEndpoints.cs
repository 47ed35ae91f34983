using Keystone.Operations;
using Keystone.Silo.Hosting;

namespace Keystone.Silo.Gateway;

public sealed record AlertsView(DateTimeOffset? EvaluatedAt, double? BaselineEventsPerSecond, IReadOnlyList<AlertView> Alerts);

internal static class AlertEndpoints
{
    private static readonly Lazy<string> StatusPage = new(() =>
    {
        using var stream = typeof(AlertEndpoints).Assembly.GetManifestResourceStream("status.html")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static void MapAlerts(this IEndpointRouteBuilder app)
    {
        // The pipeline at a glance: stages, rates, lag, alerts, read live from the API by the page itself.
        app.MapGet("/status", () => Results.Content(StatusPage.Value, "text/html; charset=utf-8")).ExcludeFromDescription();
        app.MapGet("/v1/alerts", (AlertMonitor monitor) =>
        {
            var (alerts, baseline, at) = monitor.Current;
            return Results.Ok(new AlertsView(at, baseline, alerts));
        }).WithTags("Operations").WithName("GetAlerts")
          .WithSummary("The alert rules as last evaluated on this silo: event lag, processing p99, error rate, throughput against its baseline")
          .Produces<AlertsView>();
    }
}
