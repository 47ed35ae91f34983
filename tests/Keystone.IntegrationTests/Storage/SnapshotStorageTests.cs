using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Storage;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Storage;

/// <summary>Grain state in snapshot buckets: many entities per blob at a checkpoint, compaction, and reload on a new silo.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SnapshotStorageTests(AzuriteFixture azurite)
{
    private const int Users = 300;
    private const int Waves = 3;

    [Fact]
    public async Task A_checkpoint_of_hundreds_of_entities_writes_a_few_blobs_and_compacted_buckets_reload_exactly()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        settings["Keystone:Storage:SnapshotBuckets"] = "4";
        settings["Keystone:Storage:SnapshotCompactAfter"] = "3";
        var users = Enumerable.Range(0, Users).Select(i => $"snap-user-{i}").ToArray();
        var at = DateTimeOffset.UtcNow.AddMinutes(-1);

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var metrics = silo.Services.GetRequiredService<CheckpointMetrics>();
            for (var wave = 1; wave <= Waves; wave++)
            {
                var puts = await BlobPuts(silo.Http);
                var entityWrites = EntityWrites(metrics);
                var events = users.SelectMany(u => new[] { TestEvents.Play(u, "snap-video", at: at), TestEvents.Play(u, "snap-video", "video.play.stopped", position: 1_000, at: at) }).ToList();
                var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                var expected = (long)wave * events.Count;
                await Eventually.Until(async () => (await Operators(silo)).Sum(o => o.Events), n => n == expected, TimeSpan.FromSeconds(60), $"{expected} events at the window operators");
                await Eventually.Until(async () => (await Operators(silo)).All(o => o.CheckpointedSequence == o.Sequence), done => done, TimeSpan.FromSeconds(60), "a complete activity checkpoint");

                // Every user's state was written, and those writes shared blobs: a bucket writes one per group.
                var written = EntityWrites(metrics) - entityWrites;
                var blobs = await BlobPuts(silo.Http) - puts;
                Assert.True(written >= Users, $"wave {wave}: {written} entity state writes, expected at least {Users}");
                Assert.True(blobs * 5 <= written, $"wave {wave}: {blobs} blob writes for {written} entity state writes");
            }

            // A user never written costs no storage read to find out. Asked here, where every grain of the test is
            // active: after a restart, the replay of the log's uncovered tail activates profiles (whose state is
            // also named "activity") at any moment, and CI once counted one of those reads in between.
            var reads = await UserStateReads(silo.Http);
            Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.GetAsync("/v1/users/snap-nobody/activity")).StatusCode);
            Assert.Equal(reads, await UserStateReads(silo.Http));
        }

        // Compaction folded the deltas: no bucket keeps more than a base and the deltas since (at most 4 × 3 of them).
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        var perBucket = new Dictionary<string, int>();
        var bases = 0;
        await foreach (var blob in container.GetBlobsAsync())
        {
            Assert.True(SnapshotStore.TryParseName(blob.Name, out _, out var isBase), blob.Name);
            if (isBase) bases++;
            var bucket = blob.Name[..blob.Name.IndexOf('/')];
            perBucket[bucket] = perBucket.GetValueOrDefault(bucket) + 1;
        }
        Assert.True(bases > 0, "no bucket was compacted");
        Assert.All(perBucket, b => Assert.True(b.Value <= 1 + 4 * 3, $"bucket {b.Key} holds {b.Value} segments"));

        // A new silo reads every user back exactly, from bases and deltas alike.
        await using var again = await TestSilo.StartAsync(settings);
        foreach (var user in users)
        {
            var activity = JsonNode.Parse(await again.Http.GetStringAsync($"/v1/users/{user}/activity"))!;
            Assert.Equal(2 * Waves, activity["totals"]!["events"]!.GetValue<long>());
        }
        // Reading a written state back is counted, by state name (the buckets' own background work, compactions of the
        // coordinator's checkpoints, reads blobs too).
        var readBack = await UserStateReads(again.Http);
        Assert.True(readBack >= Users, $"{readBack} reads of user state for {Users} users read back");
    }

    private static async Task<long> UserStateReads(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync("/v1/stats"))!["snapshot_reads"]?["activity"]?.GetValue<long>() ?? 0;

    private static long EntityWrites(CheckpointMetrics metrics) =>
        metrics.ByKind().Where(k => k.Key is "user" or "profile").Sum(k => k.Value.Writes);

    private static async Task<long> BlobPuts(HttpClient http) => (await StorageRequests(http)).GetValueOrDefault("blob.put");

    private static async Task<OperatorStats[]> Operators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    private static async Task<Dictionary<string, long>> StorageRequests(HttpClient http) =>
        JsonNode.Parse(await http.GetStringAsync("/v1/stats"))!["storage_requests"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<long>());
}
