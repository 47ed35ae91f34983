using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Prometheus metrics and the alert rules on a real silo.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class OperationsTests(AzuriteFixture azurite)
{
    private static async Task<JsonObject> Alert(HttpClient http, string name) =>
        JsonNode.Parse(await http.GetStringAsync("/v1/alerts"))!["alerts"]!.AsArray().Single(a => a!["name"]!.GetValue<string>() == name)!.AsObject();

    [Fact]
    public async Task Metrics_are_scraped_and_the_error_rate_alert_fires_and_resolves()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        // A window without traffic resolves the alert, so "firing" lasts one window: long enough here for the polls
        // below to see it on a busy machine (with 300 ms windows CI once saw only "resolved").
        settings["Keystone:Alerts:EvaluationInterval"] = "00:00:02";
        await using var silo = await TestSilo.StartAsync(settings);
        var http = silo.Http;

        var bad = TestEvents.Node(TestEvents.Play("ops-u1", "ops-v1"));
        bad["event_type"] = "video.play.nope";
        var body = new JsonArray(TestEvents.Node(TestEvents.Play("ops-u1", "ops-v1")), bad);
        await http.PostAsync("/v1/events", TestEvents.JsonContent(body.ToJsonString()));

        // One refused in two: far above 0.1 %.
        await Eventually.Until(async () => (await Alert(http, "error-rate"))["state"]!.GetValue<string>(), s => s == "firing", TimeSpan.FromSeconds(10), "error-rate firing");
        Assert.Contains("1 of 2 refused", (await Alert(http, "error-rate"))["detail"]!.GetValue<string>());
        // Then only good events: the next window resolves it.
        await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([TestEvents.Play("ops-u2", "ops-v1")])));
        await Eventually.Until(async () => (await Alert(http, "error-rate"))["state"]!.GetValue<string>(), s => s == "resolved", TimeSpan.FromSeconds(10), "error-rate resolved");

        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("keystone_ingest_events_total", metrics);
        Assert.Contains("keystone_ingest_rejected_total", metrics);
        Assert.Contains("keystone_event_lag_milliseconds_bucket{otel_scope_name=\"Keystone.Pipeline\",stage=\"router\"", metrics);
        Assert.Contains("keystone_stage_processing_milliseconds_count{otel_scope_name=\"Keystone.Pipeline\",stage=\"ingest\"", metrics);
    }

    [Fact]
    public async Task Every_storage_request_of_the_silo_is_counted_by_operation()
    {
        var silo = await azurite.SharedSiloAsync();
        var before = await StorageRequests(silo.Http);
        await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([TestEvents.Play("ops-storage-u1", "ops-storage-v1")])));

        // The event's path writes to blob storage (today the operators' logs and the archive); the count must rise.
        await Eventually.Until(async () => (await StorageRequests(silo.Http)).Where(p => p.Key.StartsWith("blob.", StringComparison.Ordinal)).Sum(p => p.Value),
            n => n > before.Where(p => p.Key.StartsWith("blob.", StringComparison.Ordinal)).Sum(p => p.Value), TimeSpan.FromSeconds(30), "blob requests counted");
        var metrics = await silo.Http.GetStringAsync("/metrics");
        Assert.Contains("keystone_storage_requests_total{otel_scope_name=\"Keystone.Storage\",operation=\"blob.", metrics);
        // How long requests take, and whether one is waiting for its answer (a stalled request shows here before it times out).
        Assert.Contains("keystone_storage_request_duration_milliseconds_bucket{otel_scope_name=\"Keystone.Storage\",operation=\"blob.", metrics);
        Assert.Matches(@"(?m)^keystone_storage_requests_in_flight\{[^}]*\} \d+", metrics);
        Assert.Matches(@"(?m)^keystone_storage_oldest_request_age_seconds\{[^}]*\} [\d.eE+-]+", metrics);
    }

    private static async Task<Dictionary<string, long>> StorageRequests(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync("/v1/stats"))!["storage_requests"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<long>());
}
