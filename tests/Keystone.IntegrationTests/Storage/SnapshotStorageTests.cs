using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Storage;
using Keystone.Topics;
using Orleans.Concurrency;

namespace Keystone.IntegrationTests.Storage;

/// <summary>Grain state in snapshot buckets: many entities per blob at a checkpoint, dead segments deleted, compaction, and reload on a new silo.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SnapshotStorageTests(AzuriteFixture azurite)
{
    private const int Users = 300;
    private const int Waves = 3;

    [Fact]
    public async Task A_checkpoint_of_hundreds_of_entities_writes_a_few_blobs_and_buckets_keep_only_live_segments_and_reload_exactly()
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

        // What is left in each bucket is what a reload needs: no segment without a live state in it (unless it clears
        // one), and at most the 4 x 3 segments after which a bucket is folded whatever its garbage.
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        var perBucket = new Dictionary<string, List<(long Segment, bool IsBase, string Name)>>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            Assert.True(SnapshotStore.TryParseName(blob.Name, out var segment, out var isBase), blob.Name);
            var bucket = blob.Name[..blob.Name.IndexOf('/')];
            if (!perBucket.TryGetValue(bucket, out var list)) perBucket[bucket] = list = [];
            list.Add((segment, isBase, blob.Name));
        }
        foreach (var (bucket, list) in perBucket)
        {
            Assert.True(list.Count <= 1 + 4 * 3, $"bucket {bucket} holds {list.Count} segments");
            var index = new SnapshotIndex();
            var ordered = list.OrderBy(s => s.Segment).ToList();
            foreach (var s in ordered.Skip(Math.Max(0, ordered.FindLastIndex(s => s.IsBase))))
            {
                var (isBase, records) = SnapshotSegment.Decode((await container.GetBlobClient(s.Name).DownloadContentAsync()).Value.Content.ToMemory(), s.Name);
                index.Apply(s.Segment, isBase, records);
            }
            Assert.True(index.Dead().Count == 0, $"bucket {bucket} keeps dead segments {string.Join(", ", index.Dead())}");
        }

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

    [Fact]
    public async Task A_bucket_deletes_segments_that_died_folds_itself_when_half_is_garbage_keeps_clears_and_reloads_exactly()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:SnapshotBuckets"] = "4";
        settings["Keystone:Storage:SnapshotCompactAfter"] = "3";
        // A bucket number no state maps to (there are 4): only this test writes it.
        const int Bucket = 99;
        static Immutable<byte[]> Bytes(char c, int n) => new(Encoding.UTF8.GetBytes(new string(c, n)));
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        async Task<string[]> Segments()
        {
            var names = new List<string>();
            await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, SnapshotStore.BucketPrefix(Bucket), default)) names.Add(blob.Name[(blob.Name.IndexOf('/') + 1)..]);
            return [.. names.Order(StringComparer.Ordinal)];
        }
        // A write is answered once its segment is durable; deletions and compactions follow it in the background.
        async Task Holds(params string[] expected)
        {
            var last = Array.Empty<string>();
            try
            {
                await Eventually.Until(async () => last = await Segments(), names => names.SequenceEqual(expected), TimeSpan.FromSeconds(30), "the segments");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"bucket {Bucket} holds {string.Join(", ", last)}, expected {string.Join(", ", expected)}");
            }
        }

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var bucket = silo.Client.GetGrain<ISnapshotBucketGrain>(Bucket);
            // Written together: one group, one segment (1). Then "a" and "b" are written again on their own (2, 3), which
            // leaves 2,000 overwritten bytes in segment 1 against 510 live ones in three segments: the bucket folds
            // them into a base (4) and deletes 1 to 3.
            var first = await Task.WhenAll(bucket.Write("a", 0, Bytes('a', 1_000)), bucket.Write("b", 0, Bytes('b', 1_000)), bucket.Write("c", 0, Bytes('c', 10)));
            Assert.All(first, w => Assert.Equal((true, 1L), (w.Written, w.Version)));
            await Holds("000000000001-d");
            Assert.True((await bucket.Write("a", 1, Bytes('A', 400))).Written);
            await Holds("000000000001-d", "000000000002-d");
            Assert.True((await bucket.Write("b", 1, Bytes('B', 100))).Written);
            await Holds("000000000004-b");

            // "c" written twice more: the first of those segments (5) dies with the second (6) and is deleted at once.
            // The base stays, though nothing in it but "a" and "b" is live.
            Assert.True((await bucket.Write("c", 1, Bytes('C', 10))).Written);
            Assert.True((await bucket.Write("c", 2, Bytes('Z', 10))).Written);
            await Holds("000000000004-b", "000000000006-d");

            // Clearing "b" writes a segment (7) with no live state in it, which stays: without it, a reload would find
            // "b" in the base. (120 overwritten bytes against 410 live ones: no compaction.)
            Assert.True((await bucket.Clear("b", 2)).Written);
            Assert.True((await bucket.Write("c", 3, Bytes('Y', 10))).Written);
            await Holds("000000000004-b", "000000000007-d", "000000000008-d");

            var stats = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["snapshot_segments"]!;
            Assert.True(stats["compactions"]!.GetValue<long>() >= 1, stats.ToJsonString());
            Assert.True(stats["dead_deleted"]!.GetValue<long>() >= 1, stats.ToJsonString());
            var metrics = await silo.Http.GetStringAsync("/metrics");
            Assert.Matches(@"keystone_snapshot_dead_segments_total\{[^}]*\} [1-9]", metrics);
            Assert.Matches(@"keystone_snapshot_compactions_total\{[^}]*\} [1-9]", metrics);
        }

        // A new silo's bucket reads what the old one left, and nothing of what it deleted.
        await using var again = await TestSilo.StartAsync(settings);
        var reloaded = again.Client.GetGrain<ISnapshotBucketGrain>(Bucket);
        var a = await reloaded.Read("a");
        Assert.Equal((2L, new string('A', 400)), (a!.Version, Encoding.UTF8.GetString(a.Data)));
        Assert.Null(await reloaded.Read("b"));
        var c = await reloaded.Read("c");
        Assert.Equal((4L, new string('Y', 10)), (c!.Version, Encoding.UTF8.GetString(c.Data)));
        // Versions carry on from there: a writer holding a stale one is refused.
        Assert.False((await reloaded.Write("c", 3, Bytes('x', 1))).Written);
        Assert.True((await reloaded.Write("b", 0, Bytes('b', 1))).Written);
    }

    [Fact]
    public async Task A_bucket_keeps_what_leaving_entities_wrote_or_left_unchanged_and_hands_it_back_once()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:SnapshotBuckets"] = "4";
        const int Bucket = 98;
        static Immutable<byte[]> Text(string s) => new(Encoding.UTF8.GetBytes(s));
        await using var silo = await TestSilo.StartAsync(settings);
        var store = silo.Services.GetRequiredService<SnapshotStore>();
        var bucket = silo.Client.GetGrain<ISnapshotBucketGrain>(Bucket);
        // Each read below is of a state outside the bucket's newest segment (which it keeps whole anyway).
        var others = 0;
        async Task<(string Text, long Storage, long Memory)> Read(string key)
        {
            Assert.True((await bucket.Write($"other-{++others}", 0, Text("x"))).Written);
            var (storage, memory) = (store.StateReads().GetValueOrDefault(key), store.Warm.Reads);
            var state = await bucket.Read(key);
            return ($"{state!.Version}:{Encoding.UTF8.GetString(state.Data)}", store.StateReads().GetValueOrDefault(key) - storage, store.Warm.Reads - memory);
        }

        // An entity that writes as it leaves is read back from memory, once: the activation holds it from then on.
        Assert.True((await bucket.WriteAndKeep("left", 0, Text("last words"))).Written);
        Assert.Equal(("1:last words", 0L, 1L), await Read("left"));
        Assert.Equal(("1:last words", 1L, 0L), await Read("left"));

        // A checkpoint's write is not kept: active entities are not held twice.
        Assert.True((await bucket.Write("active", 0, Text("checkpoint"))).Written);
        Assert.Equal(("1:checkpoint", 1L, 0L), await Read("active"));

        // One that leaves unchanged hands over the bytes of its durable version, and writes nothing; bytes of any
        // other version are refused.
        var puts = store.Warm.Bytes;
        Assert.False(await bucket.Keep("active", 2, Text("not durable")));
        Assert.False(await bucket.Keep("never-written", 1, Text("nothing")));
        Assert.True(await bucket.Keep("active", 1, Text("checkpoint")));
        Assert.True(store.Warm.Bytes > puts);
        Assert.Equal(("1:checkpoint", 0L, 1L), await Read("active"));

        var stats = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["snapshot_segments"]!;
        Assert.Equal(store.Warm.Reads, stats["warm_reads"]!.GetValue<long>());
        Assert.Equal(store.Warm.Bytes, stats["warm_bytes"]!.GetValue<long>());
    }

    [Fact]
    public async Task With_no_memory_for_leaving_entities_a_bucket_keeps_none()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:SnapshotBuckets"] = "4";
        settings["Keystone:Storage:SnapshotWarmMegabytes"] = "0";
        await using var silo = await TestSilo.StartAsync(settings);
        var store = silo.Services.GetRequiredService<SnapshotStore>();
        var bucket = silo.Client.GetGrain<ISnapshotBucketGrain>(97);
        Assert.True((await bucket.WriteAndKeep("left", 0, new Immutable<byte[]>(Encoding.UTF8.GetBytes("bytes")))).Written);
        Assert.False(await bucket.Keep("left", 1, new Immutable<byte[]>(Encoding.UTF8.GetBytes("bytes"))));
        Assert.True((await bucket.Write("after", 0, new Immutable<byte[]>(Encoding.UTF8.GetBytes("x")))).Written);
        Assert.Equal("bytes", Encoding.UTF8.GetString((await bucket.Read("left"))!.Data));
        Assert.Equal(1, store.StateReads().GetValueOrDefault("left"));
        Assert.Equal((0L, 0L), store.Warm);
    }

    [Fact]
    public async Task Reading_a_bucket_from_outside_while_it_compacts_lists_it_again()
    {
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient($"snap-read-{Guid.NewGuid():N}");
        await container.CreateAsync();
        static SnapshotRecord Record(string key, long version, string text) => new(key, version, Encoding.UTF8.GetBytes(text));
        async Task Put(long segment, bool isBase, params SnapshotRecord[] records) =>
            await container.GetBlobClient(SnapshotStore.SegmentName(7, segment, isBase)).UploadAsync(BinaryData.FromBytes(SnapshotSegment.Encode(records, isBase)));
        await Put(1, false, Record("a", 1, "one"));
        await Put(2, false, Record("b", 1, "two"), Record("a", 2, "three"));

        // Between the reader's listing and its reads, the bucket folds both deltas into a base and deletes them, as
        // its grain does when it compacts.
        var compactions = 0;
        async Task CompactOnce()
        {
            if (compactions++ > 0) return;
            await Put(3, true, Record("a", 2, "three"), Record("b", 1, "two"));
            await container.GetBlobClient(SnapshotStore.SegmentName(7, 1, false)).DeleteAsync();
            await container.GetBlobClient(SnapshotStore.SegmentName(7, 2, false)).DeleteAsync();
        }

        var records = await SnapshotStore.ReadBucketAsync(container, SnapshotStore.BucketPrefix(7), CompactOnce);
        Assert.Equal(2, compactions);
        Assert.Equal(["a=three", "b=two"], records.Select(r => $"{r.Key}={Encoding.UTF8.GetString(r.Data!.Value.Span)}").Order());
        var all = await SnapshotStore.ReadAllAsync(container);
        Assert.Equal(["a", "b"], all.Keys.Order());
        await container.DeleteAsync();
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
