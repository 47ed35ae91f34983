using Keystone.Operations;
using Keystone.Silo.Hosting;

namespace Keystone.Silo.Gateway;

public sealed record StatusHistoryView(TimeSpan EvaluationInterval, DateTimeOffset From, IReadOnlyList<HistoryPoint> Points);

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
        app.MapGet("/v1/status/history", (HttpRequest request, AlertMonitor monitor, TimeProvider time, Microsoft.Extensions.Options.IOptions<AlertOptions> options) =>
        {
            if (!Problems.TryInt(request, "minutes", 1, (int)AlertMonitor.HistoryRetention.TotalMinutes, (int)AlertMonitor.HistoryRetention.TotalMinutes, out var minutes, out var problem))
                return problem!;
            var from = time.GetUtcNow() - TimeSpan.FromMinutes(minutes);
            return Results.Ok(new StatusHistoryView(options.Value.EvaluationInterval, from, [.. monitor.History.Where(p => p.At >= from)]));
        }).WithTags("Operations").WithName("GetStatusHistory")
          .WithSummary("This silo's throughput (events/s) and event lag p99 per stage for each alert evaluation window of the last `minutes` (1-15, default 15): the status page's charts")
          .Produces<StatusHistoryView>().ProducesProblem(StatusCodes.Status400BadRequest);
    }
}
