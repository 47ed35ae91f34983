using System.Net;
using System.Text.Json.Nodes;
using Keystone.Aggregation;
using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.DependencyInjection;

namespace Keystone.IntegrationTests.Storage;

/// <summary>Storage is for durability, not transport: counted by the storage-request counter between two checkpoints.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class StoragePathTests(AzuriteFixture azurite)
{
    [Theory]
    [InlineData("File")]
    [InlineData("Blob")]
    public async Task Between_two_checkpoints_the_fronting_log_is_the_only_storage_write_on_the_path_of_an_event(string log)
    {
        var settings = TestSilo.DefaultSettings(azurite);
        var directory = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("fronting-log"));
        settings["Keystone:Checkpoints:FrontingLog"] = log;
        if (log == "File") settings["Keystone:Checkpoints:LogDirectory"] = directory;
        // No checkpoint falls inside the measurement: what is written there is on the path of the events.
        settings["Keystone:Checkpoints:Interval"] = "01:00:00";
        settings["Keystone:Aggregation:CheckpointInterval"] = "01:00:00";
        settings["Keystone:Ads:CheckpointInterval"] = "01:00:00";
        // The graph's default is a minute now, which a slow run can reach (CI once counted 4 state writes here).
        settings["Keystone:Graph:CheckpointInterval"] = "00:10:00";
        // Nor a manifest rewrite of the warm-up's hour: metadata on a timer, not on an event's path.
        settings["Keystone:Archive:ManifestInterval"] = "01:00:00";
        // Nor a log segment sealed into the lake: the lake is written from the log in bulk, off the event's path.
        settings["Keystone:Archive:SealInterval"] = "01:00:00";
        const int users = 50, perUser = 40, perRequest = 100;
        try
        {
            await using var silo = await TestSilo.StartAsync(settings);
            // The coordinator's first round starts 200 ms after the silo does, and every consumer writes at its first
            // barrier (an operator records where its log stands even with nothing to cover; the archive writes what
            // it holds). On a loaded machine that round was still writing inside the measurement (CI saw the four
            // ads operators' state writes there). With no event sent yet, every consumer acknowledges it as soon as it
            // has written, so wait for it first: the warm-up's events then come after its barrier everywhere.
            var coordinator = silo.Client.GetGrain<ICheckpointCoordinatorGrain>(0);
            await Eventually.Until(() => coordinator.GetStatus(), s => s.Completed >= 1, TimeSpan.FromSeconds(60), "the first checkpoint round completed by every consumer");
            // Some events first, so that every partition's log segment, the containers and the grains' snapshot
            // buckets exist before the count starts (40 users: all four partitions but with odds of 1 in 20,000).
            const int warmUp = 40;
            await Post(silo, Enumerable.Range(0, warmUp).Select(i => TestEvents.Play($"path-warm-up-{i}", "path-v0")));
            await Eventually.Until(() => OperatorEvents(silo), n => n == warmUp, TimeSpan.FromSeconds(30), "the warm-up events at the window operators");
            var before = await StorageCounts(silo.Http);

            var now = DateTimeOffset.UtcNow;
            var events = Enumerable.Range(0, users * perUser).Select(i => TestEvents.Play($"path-u{i % users}", $"path-v{i % 7}", at: now.AddMilliseconds(i))).ToList();
            foreach (var request in events.Chunk(perRequest)) await Post(silo, request);
            await Eventually.Until(() => OperatorEvents(silo), n => n == warmUp + events.Count, TimeSpan.FromSeconds(60), $"{events.Count} more events at the window operators");

            var after = await StorageCounts(silo.Http);
            var writes = after.Where(kv => StorageRequests.IsWrite(kv.Key))
                .Select(kv => (Operation: kv.Key, Count: kv.Value - before.GetValueOrDefault(kv.Key)))
                .Where(w => w.Count > 0)
                .ToList();
            // The last writes by name too: a failure should say what wrote, not only how often.
            var recent = silo.Services.GetRequiredService<StorageRequests>().RecentWrites;
            var described = string.Join(", ", writes.Select(w => $"{w.Operation} {w.Count}")) + "; the silo's last writes: " + string.Join(", ", recent.TakeLast(8));
            if (log == "File")
            {
                // The log is on local disk: the events cost no storage request at all.
                Assert.True(writes.Count == 0, $"storage writes on the path: {described}");
            }
            else
            {
                // Appends to the partitions' log blobs (and the creation of a new log segment), one per group commit.
                Assert.All(writes, w => Assert.True(w.Operation is "blob.append" or "blob.put", $"storage writes on the path: {described}"));
                // At most one append per partition's share of a request (group commit makes it fewer), doubled for
                // the SDK's retries on this busy machine: an append per delivery and operator would be hundreds more.
                var appends = writes.Where(w => w.Operation == "blob.append").Sum(w => w.Count);
                Assert.InRange(appends, 1, 2 * events.Count / perRequest * 4);
                Assert.InRange(writes.Where(w => w.Operation == "blob.put").Sum(w => w.Count), 0, 4); // a new segment per partition
            }
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task Post(TestSilo silo, IEnumerable<KeystoneEvent> events) =>
        Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)))).StatusCode);

    private static async Task<long> OperatorEvents(TestSilo silo) =>
        (await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()))).Sum(o => o.Events);

    private static async Task<Dictionary<string, long>> StorageCounts(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync("/v1/stats"))!["storage_requests"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<long>());
}
