using System.Net;
using System.Text.Json.Nodes;
using Keystone.Client.Hosting;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Hosting;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Publish → ingest → fronting → router → target topics → taps, on a real silo with real blob storage.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class EndToEndTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Events_fan_out_to_every_matching_topic_with_transforms_applied()
    {
        await using var silo = await TestSilo.StartAsync(TestSilo.DefaultSettings(azurite));
        var play = TestEvents.Play("e2e-user-1", "video-7", quality: "4K");
        var usPayment = TestEvents.Payment("e2e-user-2", "us-east-1", email: "alice@example.com");
        var euPayment = TestEvents.Payment("e2e-user-3", "eu-west-1");
        var ad = TestEvents.AdImpression("e2e-user-4");

        var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([play, usPayment, euPayment, ad])));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // archive gets everything; each category goes to its own topics.
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n == 4, TimeSpan.FromSeconds(20), "4 archived events");
        var expected = new Dictionary<string, long>
        {
            ["analytics-playback-events"] = 1,
            ["ml-recommendation-input"] = 1,
            ["graph-updates"] = 1,
            ["playback-4k-starts"] = 1,
            ["billing-events-us"] = 1,
            ["billing-events-intl"] = 1,
            ["ads-events"] = 1,
            ["ads-campaign"] = 1,
            ["ads-billing"] = 1,
            ["ads-analytics"] = 1,
            ["ads-fraud-alerts"] = 0,
            ["user-events"] = 0,
        };
        foreach (var (topic, count) in expected)
            await Eventually.Until(() => silo.DeliveredAsync(topic), n => n == count, TimeSpan.FromSeconds(10), $"{count} on {topic}");

        // mask-pii-fields replaced the e-mail and card with stable hashes; nothing else changed.
        var billing = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics/billing-events-us/events?limit=5"))!;
        var delivered = billing["events"]![0]!["event"]!;
        Assert.Equal(usPayment.EventId.ToString(), delivered["event_id"]!.GetValue<string>());
        Assert.StartsWith("sha256:", delivered["payload"]!["email"]!.GetValue<string>());
        Assert.StartsWith("sha256:", delivered["payload"]!["card_last4"]!.GetValue<string>());
        Assert.Equal("succeeded", delivered["payload"]!["status"]!.GetValue<string>());
        Assert.DoesNotContain("alice@example.com", billing.ToJsonString());

        // enrich recorded the rule, partition and topic.
        var ads = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics/ads-events/events"))!;
        var metadata = ads["events"]![0]!["event"]!["metadata"]!;
        Assert.Equal("ads", metadata["routed_by"]!.GetValue<string>());
        Assert.Equal("ads-events", metadata["topic"]!.GetValue<string>());
        Assert.Equal(Partitioning.PartitionOf("e2e-user-4", 4).ToString(System.Globalization.CultureInfo.InvariantCulture), metadata["partition"]!.GetValue<string>());

        // filter + project: only 4K starts, only the projected fields.
        var sample = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics/playback-4k-starts/events"))!;
        var projected = sample["events"]![0]!["event"]!["payload"]!.AsObject();
        Assert.Equal(["device_id", "quality", "user_id", "video_id"], projected.Select(p => p.Key).Order().ToArray());

        // the topic listing agrees.
        var topics = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics"))!.AsArray();
        var archive = topics.Single(t => t!["name"]!.GetValue<string>() == "archive-all-events")!;
        Assert.Equal(4, archive["delivered"]!.GetValue<long>());
        Assert.Equal("LOW", archive["priority"]!.GetValue<string>());
        // Delivered within the last minute: the recent lag has them, and holds nothing the lifetime lag does not.
        Assert.True(archive["recent_lag_p99_ms"]!.GetValue<double>() > 0, archive.ToJsonString());
        Assert.True(archive["recent_lag_max_ms"]!.GetValue<double>() <= archive["lag_max_ms"]!.GetValue<double>(), archive.ToJsonString());
    }

    [Fact]
    public async Task The_sdk_publishes_through_an_external_orleans_client()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        await using var silo = await TestSilo.StartAsync(settings);

        using var client = await ExternalClient.StartAsync(silo.GatewayPort, settings["Keystone:Cluster:ClusterId"]!);
        var deadLetters = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("dlq") + ".jsonl");
        await using (var publisher = KeystonePublisher.Create(client.Cluster, new PublisherOptions { DeadLetterPath = deadLetters, Linger = TimeSpan.FromMilliseconds(20) }))
        {
            for (var i = 0; i < 300; i++)
                Assert.True((await publisher.PublishAsync(TestEvents.Play($"sdk-user-{i % 37}", $"video-{i % 11}"))).IsQueued);
            await publisher.FlushAsync();
            var metrics = publisher.Metrics.Snapshot();
            Assert.Equal(300, metrics.Published);
            Assert.Equal(0, metrics.DeadLettered);
        }
        Assert.False(File.Exists(deadLetters));

        await Eventually.Until(() => silo.DeliveredAsync("analytics-playback-events"), n => n == 300, TimeSpan.FromSeconds(20), "300 playback events");
        Assert.Equal(300, await silo.DeliveredAsync("analytics-playback-events"));
    }
}

/// <summary>An Orleans client in its own host, as a producer service would run it.</summary>
public sealed class ExternalClient : IDisposable
{
    private readonly IHost _host;

    private ExternalClient(IHost host) => _host = host;

    public IClusterClient Cluster => _host.Services.GetRequiredService<IClusterClient>();

    public static async Task<ExternalClient> StartAsync(int gatewayPort, string clusterId, TimeSpan? connectTimeout = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(c => c.UseKeystoneCluster(new KeystoneClientOptions
        {
            Gateways = [$"127.0.0.1:{gatewayPort}"],
            ClusterId = clusterId,
        }, connectTimeout));
        var host = builder.Build();
        await host.StartAsync();
        return new ExternalClient(host);
    }

    public void Dispose()
    {
        _host.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _host.Dispose();
    }
}
