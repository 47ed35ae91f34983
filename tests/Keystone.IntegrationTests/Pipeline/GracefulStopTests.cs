using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Archive;
using Keystone.Events;
using Keystone.IntegrationTests.Deployment;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>A graceful stop (Ctrl+C of the quick start, SIGTERM of a pod), as the quick start runs.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class GracefulStopTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task A_graceful_stop_logs_no_error_and_after_the_restart_the_lake_holds_every_event_once()
    {
        var (settings, directory) = QuickStartSettings();
        // Shipped intervals (10 s): at the stop the archive writers still hold events for the next barrier and have
        // state to write.
        var httpPort = TestSilo.FreePort();
        var now = DateTimeOffset.UtcNow;
        var events = Enumerable.Range(0, 400).Select(i => TestEvents.Play($"stop-u{i % 40}", $"stop-v{i % 9}", at: now.AddMilliseconds(i))).ToList();

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            foreach (var request in events.Chunk(50))
                Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);
            await Eventually.Until(() => Delivered(silo, "archive-all-events"), n => n >= events.Count, TimeSpan.FromSeconds(30), "400 events on the archive topic");

            await StopCleanly(silo);

            // After the restart the fronting log replays what no checkpoint covered; the writers know what they wrote.
            // Short intervals after it, so that a checkpoint soon covers the replay (operators acknowledge barriers at
            // their own checkpoints).
            settings["Keystone:Checkpoints:Interval"] = "00:00:00.500";
            settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
            settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
            settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
            silo = await SiloProcess.StartAsync(httpPort, settings);
            var routed = await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["position"]!.GetValue<long>()),
                n => n > 0, TimeSpan.FromSeconds(30), "the routers' positions");
            await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/checkpoints"))!["covered"]!.AsArray().Sum(c => c!.GetValue<long>()),
                n => n >= routed, TimeSpan.FromSeconds(60), "a checkpoint covering everything routed, the replay included");

            var lake = new ArchiveStore(new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-lake"));
            var ids = new List<Guid>();
            foreach (var name in await lake.ListAsync(now.AddHours(-1), now.AddHours(1)))
                await foreach (var line in lake.ReadLinesAsync(name)) ids.Add(EventJson.Parse(line).EventId);
            Assert.Equal(events.Select(e => e.EventId).Order(), ids.Order());
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 6000 ? silo.Output[^6000..] : silo.Output);
            await silo.DisposeAsync();
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_stop_in_the_middle_of_an_entity_checkpoint_logs_no_error_and_the_restart_counts_every_event_once()
    {
        var (settings, directory) = QuickStartSettings();
        settings["Keystone:Checkpoints:Interval"] = "00:00:00.500";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        // Every state write waits 200 ms: the window operators' checkpoint of some 600 entities lasts seconds.
        settings["Keystone:Faults:SlowSnapshotWrites"] = "00:00:00.200";
        // Four writes in flight: the users alone take some 15 s, so the stop cannot miss the checkpoint.
        settings["Keystone:Aggregation:CheckpointConcurrency"] = "4";
        var httpPort = TestSilo.FreePort();
        const int users = 300, perUser = 2;
        var events = Enumerable.Range(0, users * perUser).Select(i => TestEvents.Play($"mid-u{i % users}", $"mid-v{i % 11}")).ToList();

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            foreach (var request in events.Chunk(100))
                Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);
            // Stop once the checkpoint has written some users, well before it has written them all.
            await Eventually.Until(() => UserStateWrites(silo), n => n > 0, TimeSpan.FromSeconds(60), "the first user states written by a checkpoint");
            Assert.InRange(await UserStateWrites(silo), 1, users - 1);

            await StopCleanly(silo);

            settings.Remove("Keystone:Faults:SlowSnapshotWrites");
            silo = await SiloProcess.StartAsync(httpPort, settings);
            for (var u = 0; u < users; u++)
                await Eventually.Until(() => ClusterTestKit.ActivityEvents(silo, $"mid-u{u}"), n => n >= perUser, TimeSpan.FromSeconds(90), $"mid-u{u}'s {perUser} events");
            for (var u = 0; u < users; u++)
                Assert.Equal(perUser, await ClusterTestKit.ActivityEvents(silo, $"mid-u{u}"));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 6000 ? silo.Output[^6000..] : silo.Output);
            await silo.DisposeAsync();
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<long> UserStateWrites(SiloProcess silo) =>
        (long)PrometheusText.Samples(await silo.Http.GetStringAsync("/metrics"), "keystone_checkpoint_writes_total")
            .Where(s => PrometheusText.Label(s.Labels, "grain") == "user").Sum(s => s.Value);

    /// <summary>The quick start's configuration (fronting log in files), with the host's "shutting down" line logged.</summary>
    private (Dictionary<string, string?> Settings, string Directory) QuickStartSettings()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        var directory = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("fronting-log"));
        settings["Keystone:Checkpoints:LogDirectory"] = directory;
        // The shipped interval: at the stop the open log segments are not in the lake yet, and the stop seals them.
        settings["Keystone:Archive:SealInterval"] = "00:01:00";
        settings["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Information";
        return (settings, directory);
    }

    /// <summary>SIGTERM; exit code 0 and no error line from the stop on.</summary>
    private async Task StopCleanly(SiloProcess silo)
    {
        Assert.Equal(0, await silo.StopAsync(TimeSpan.FromSeconds(60)));
        output.WriteLine(silo.Output.Length > 6000 ? silo.Output[^6000..] : silo.Output);
        // The stop's lines only: a shared emulator that is slow for a moment can fail a health check before it.
        var errors = silo.ErrorLines(after: "Application is shutting down");
        Assert.True(errors.Count == 0, $"the stop logged {errors.Count} errors, first: {errors.FirstOrDefault()}");
        await silo.DisposeAsync();
    }

    private static async Task<long> Delivered(SiloProcess silo, string topic) =>
        JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics"))!.AsArray().Where(t => t!["name"]!.GetValue<string>() == topic).Sum(t => t!["delivered"]!.GetValue<long>());
}
