using System.Net;
using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>A 202 means durable, in the configuration the quick start runs (memory streams).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DurableAcceptTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Theory]
    [InlineData("Blob")]
    [InlineData("File")]
    public async Task Events_accepted_right_before_a_kill_are_all_counted_once_after_the_restart(string log)
    {
        // Nothing but ports, names, keys and where the log lives differs from the shipped configuration (the quick
        // start keeps the log in files; without a log directory it goes to blobs).
        var settings = TestSilo.DefaultSettings(azurite);
        var directory = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("fronting-log"));
        if (log == "File") settings["Keystone:Checkpoints:LogDirectory"] = directory;
        // No segment is sealed into the lake before the kill: after the restart, the lake has them from the log alone.
        settings["Keystone:Archive:SealInterval"] = "01:00:00";
        var httpPort = TestSilo.FreePort();
        const int users = 50, perUser = 40;
        var now = DateTimeOffset.UtcNow;
        var events = Enumerable.Range(0, users * perUser)
            .Select(i => TestEvents.Play($"durable-u{i % users}", $"durable-v{i % 7}", at: now.AddMilliseconds(i)))
            .ToList();

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            foreach (var (request, i) in events.Chunk(100).Select((r, i) => (r, i)))
            {
                var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                // The file log's 202 waits for its group commit (a flush of the log's file system), as shipped.
                if (i == 0 && log == "File")
                    Assert.Matches(@"(?m)^keystone_fronting_log_sync_appends_total\{[^}]*\} [1-9]", await silo.Http.GetStringAsync("/metrics"));
            }
            // Straight after the last acknowledgement: most of it is still in memory, between streams and grains.
            silo.Kill();
            await silo.DisposeAsync();

            silo = await SiloProcess.StartAsync(httpPort, settings);
            for (var u = 0; u < users; u++)
                await Eventually.Until(() => Events(silo, $"durable-u{u}"), n => n >= perUser, TimeSpan.FromSeconds(90), $"durable-u{u}'s {perUser} events");
            for (var u = 0; u < users; u++)
                Assert.Equal(perUser, await Events(silo, $"durable-u{u}"));
            var stats = await silo.Http.GetStringAsync("/v1/stats");
            output.WriteLine(stats);
            // The log that was written is the one replayed.
            Assert.Equal(log == "File", Directory.Exists(directory) && Directory.EnumerateFiles(directory, "*.log", SearchOption.AllDirectories).Any());
            // The lake is the sealed log: the restarted writers sealed what the killed process left open, each event once.
            var lake = new Keystone.Archive.ArchiveStore(new Azure.Storage.Blobs.BlobServiceClient(azurite.ConnectionString)
                .GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-lake"));
            async Task<List<Guid>> LakeIds()
            {
                var ids = new List<Guid>();
                foreach (var name in await lake.ListAsync(now.AddHours(-1), now.AddHours(1)))
                    await foreach (var line in lake.ReadLinesAsync(name)) ids.Add(Keystone.Events.EventJson.Parse(line).EventId);
                return ids;
            }
            var inLake = await Eventually.Until(LakeIds, ids => ids.Count >= events.Count, TimeSpan.FromSeconds(60), "every accepted event in the lake");
            Assert.Equal(events.Select(e => e.EventId).Order(), inLake.Order());
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Checkpoints_complete_once_every_stateful_consumer_has_acknowledged_and_cover_what_was_routed()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:00.500";
        // Operators acknowledge barriers at their own checkpoints (1 min, 5 min and 30 s as shipped).
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        await using var silo = await TestSilo.StartAsync(settings);
        var events = Enumerable.Range(0, 400).Select(i => TestEvents.Play($"cover-u{i % 20}", $"cover-v{i % 5}")).ToList();
        foreach (var request in events.Chunk(50))
            Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);

        // Every position written is eventually covered: the routers, the window, graph and ad operators and the
        // archive writer all answered a barrier that follows it.
        await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["events"]!.GetValue<long>()),
            n => n >= 400, TimeSpan.FromSeconds(30), "400 events routed");
        var routed = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["position"]!.GetValue<long>());
        Assert.True(routed >= 8, $"the routers report {routed} fronting positions for 8 requests");
        var covered = await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/checkpoints"))!["covered"]!.AsArray().Sum(c => c!.GetValue<long>()),
            n => n >= routed, TimeSpan.FromSeconds(30), "checkpoints covering every routed position");
        Assert.Equal(routed, covered);

        var status = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/checkpoints"))!;
        Assert.True(status["completed"]!.GetValue<long>() >= 1);
        Assert.Equal(["activity-aggregation", "graph-updates", "ads-campaign", "archive-all-events"], status["consumers"]!.AsArray().Select(c => c!.GetValue<string>()));
    }

    [Fact]
    public async Task A_kill_in_the_middle_of_a_checkpoint_loses_nothing_and_counts_nothing_twice()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Storage:SnapshotBuckets"] = "4";
        var stalled = new Dictionary<string, string?>(settings) { ["Keystone:Faults:StalledSnapshotBuckets:0"] = "1" };
        var container = new Azure.Storage.Blobs.BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        var httpPort = TestSilo.FreePort();
        const int users = 40, perUser = 25;
        var now = DateTimeOffset.UtcNow;
        var events = Enumerable.Range(0, users * perUser)
            .Select(i => TestEvents.Play($"midckpt-u{i % users}", $"midckpt-v{i % 5}", at: now.AddMilliseconds(i)))
            .ToList();

        // Writes to one of the four snapshot buckets never complete: the window operators' checkpoint writes the
        // users of the other three and then waits for ever, half-written.
        var silo = await SiloProcess.StartAsync(httpPort, stalled);
        try
        {
            foreach (var request in events.Chunk(100))
                Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);
            var durable = await Eventually.Until(() => DurableUsers(container), n => n.Complete > 0, TimeSpan.FromSeconds(60), "users whose state is durable with all their events");
            Assert.True(durable.Complete < users, $"all {users} users are durable: the checkpoint was not caught half-written");
            silo.Kill();
            await silo.DisposeAsync();

            // The durable users replay over state that already holds their events (de-duplicated by event id); the
            // others replay from the fronting log alone.
            silo = await SiloProcess.StartAsync(httpPort, settings);
            for (var u = 0; u < users; u++)
                await Eventually.Until(() => Events(silo, $"midckpt-u{u}"), n => n >= perUser, TimeSpan.FromSeconds(90), $"midckpt-u{u}'s {perUser} events");
            for (var u = 0; u < users; u++)
                Assert.Equal(perUser, await Events(silo, $"midckpt-u{u}"));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }

        async Task<(int Complete, int Any)> DurableUsers(Azure.Storage.Blobs.BlobContainerClient blobs)
        {
            if (!await blobs.ExistsAsync()) return (0, 0);
            var totals = (await Keystone.Storage.SnapshotStore.ReadAllAsync(blobs))
                .Where(kv => kv.Key.StartsWith("activity|", StringComparison.Ordinal) && kv.Key.Contains("/midckpt-u", StringComparison.Ordinal))
                .Select(kv => JsonNode.Parse(kv.Value)?["totals"]?["events"]?.GetValue<long>())
                .OfType<long>() // the users' activity, not their profiles' (a state of the same name)
                .ToList();
            return (totals.Count(t => t == perUser), totals.Count);
        }
    }

    [Fact]
    public async Task A_restart_after_a_kill_does_not_seal_again_what_the_lake_has()
    {
        // The blob log (no log directory), each segment closed and sealed within a second.
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Archive:SealInterval"] = "00:00:01";
        var httpPort = TestSilo.FreePort();
        var now = DateTimeOffset.UtcNow;
        var before = Enumerable.Range(0, 200).Select(i => TestEvents.Play($"reseal-u{i % 20}", "reseal-v", at: now.AddMilliseconds(i))).ToList();
        var after = Enumerable.Range(0, 100).Select(i => TestEvents.Play($"reseal-u{i % 20}", "reseal-v", at: now.AddMilliseconds(500 + i))).ToList();
        async Task Publish(SiloProcess s, List<Keystone.Events.KeystoneEvent> events)
        {
            foreach (var request in events.Chunk(50))
                Assert.Equal(HttpStatusCode.Accepted, (await s.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);
        }
        async Task<JsonNode> Seals(SiloProcess s) => JsonNode.Parse(await s.Http.GetStringAsync("/v1/stats"))!["lake_seals"]!;

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            await Publish(silo, before);
            await Eventually.Until(() => Seals(silo), s => s["events"]!.GetValue<long>() >= before.Count, TimeSpan.FromSeconds(60), "the first 200 events sealed");
            silo.Kill();
            await silo.DisposeAsync();

            // Every segment that holds an event is in the lake and marked so: the restarted writers find them, and
            // what they seal from now on is only what arrives now.
            silo = await SiloProcess.StartAsync(httpPort, settings);
            await Eventually.Until(() => Seals(silo), s => s["already_sealed"]!.GetValue<long>() >= 1, TimeSpan.FromSeconds(60), "segments found in the lake");
            await Publish(silo, after);
            var seals = await Eventually.Until(() => Seals(silo), s => s["events"]!.GetValue<long>() >= after.Count, TimeSpan.FromSeconds(60), "the next 100 events sealed");
            output.WriteLine(seals.ToJsonString());
            Assert.Equal(after.Count, seals["events"]!.GetValue<long>());

            var lake = new Keystone.Archive.ArchiveStore(new Azure.Storage.Blobs.BlobServiceClient(azurite.ConnectionString)
                .GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-lake"));
            var ids = new List<Guid>();
            foreach (var name in await lake.ListAsync(now.AddHours(-1), now.AddHours(1)))
                await foreach (var line in lake.ReadLinesAsync(name)) ids.Add(Keystone.Events.EventJson.Parse(line).EventId);
            Assert.Equal(before.Concat(after).Select(e => e.EventId).Order(), ids.Order());
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }
    }

    private static async Task<long> Events(SiloProcess silo, string user)
    {
        var response = await silo.Http.GetAsync($"/v1/users/{user}/activity");
        if (!response.IsSuccessStatusCode) return 0;
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>();
    }
}
