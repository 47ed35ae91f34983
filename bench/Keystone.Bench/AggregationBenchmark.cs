using System.Diagnostics;
using Keystone.Aggregation;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Topics;
using Microsoft.Extensions.DependencyInjection;

namespace Keystone.Bench;

public sealed record AggregationResult(
    long Events,
    long ActivityEvents,
    TimeSpan Elapsed,
    LatencySnapshot GrainVisible,
    long EntityWrites,
    long EntityEvents,
    long LogWrites,
    long OperatorWrites,
    IReadOnlyDictionary<string, (long Writes, long Events)> ByKind)
{
    public double EventsPerSecond => Events / Elapsed.TotalSeconds;
    public long BlobWrites => EntityWrites + LogWrites + OperatorWrites;
    public double BlobWritesPerSecond => BlobWrites / Elapsed.TotalSeconds;

    /// <summary>Events the operators applied per blob write of any kind (log appends, entity and operator state).</summary>
    public double GroupCommitFactor => BlobWrites == 0 ? 0 : (double)ActivityEvents / BlobWrites;
}

/// <summary>
/// The full path of the aggregations issue: SDK → ingest → router → window operators (write-ahead log) → User, Video
/// and Profile grains, with checkpoints to blob storage on Azurite.
/// </summary>
public static class AggregationBenchmark
{
    public static async Task<AggregationResult> Run(BenchCluster cluster, KeystoneEvent[] pool, int rate, int seconds, PublisherOptions options)
    {
        var total = rate * seconds;
        var events = new KeystoneEvent[total];
        for (var i = 0; i < total; i++) events[i] = pool[i % pool.Length];
        var expectedActivity = events.LongCount(e => e.EventType.StartsWith("video.play.", StringComparison.Ordinal) || e.EventType.StartsWith("content.", StringComparison.Ordinal));

        var operators = Enumerable.Range(0, cluster.Partitions).Select(p => cluster.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p))).ToArray();
        foreach (var o in operators) await o.ResetStats();
        var metrics = cluster.Silo.App.Services.GetRequiredService<CheckpointMetrics>();
        var before = metrics.ByKind();
        var storage = cluster.Silo.App.Services.GetRequiredService<Keystone.Storage.StorageRequests>();
        var previousRequests = storage.Snapshot();

        var clock = Stopwatch.StartNew();
        var previousLag = LatencySnapshot.Empty;
        using var stop = new CancellationTokenSource();
        // Progress every 5 s shows where a backlog builds: applied events lagging the producer, or writes stalling.
        var progress = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(TimeSpan.FromSeconds(5), stop.Token); } catch (OperationCanceledException) { break; }
                var s = await Task.WhenAll(operators.Select(o => o.GetStats()));
                // The latency of the last 5 s alone: whether the tail is spread over the run or comes from one moment.
                var lag = LatencySnapshot.Merge(s.Select(x => x.ApplyLag));
                var recent = Since(lag, previousLag);
                previousLag = lag;
                // The storage requests of the last 5 s, by operation: what a checkpoint asks of the emulator.
                var requests = storage.Snapshot();
                var recentRequests = string.Join(", ", requests.Select(p => (p.Key, N: p.Value - previousRequests.GetValueOrDefault(p.Key))).Where(p => p.N > 0).OrderByDescending(p => p.N).Select(p => $"{p.Key} {p.N:N0}"));
                previousRequests = requests;
                if (Environment.GetEnvironmentVariable("KEYSTONE_BENCH_STAGES") == "1")
                    foreach (var (stage, (stageLag, processing)) in cluster.Silo.App.Services.GetRequiredService<Keystone.Pipeline.PipelineMetrics>().TakeStageWindow().OrderBy(kv => kv.Key))
                        Console.WriteLine($"      {stage}: lag p50 {stageLag.Percentile(0.5):0} p99 {stageLag.Percentile(0.99):0} max {stageLag.MaxMillis:0} ms; batch processing p50 {processing.Percentile(0.5):0} p99 {processing.Percentile(0.99):0} max {processing.MaxMillis:0} ms ({processing.Count} batches)");
                Console.WriteLine($"    aggregation: {clock.Elapsed.TotalSeconds:0} s, operators applied {s.Sum(x => x.Events):N0} of {expectedActivity:N0}, grain-visible p50 {recent.Percentile(0.5):0} / p99 {recent.Percentile(0.99):0} / max {recent.Max:0} ms in the last 5 s, checkpoints {s.Sum(x => x.Checkpoints)}, writes {string.Join(", ", metrics.ByKind().Select(kv => $"{kv.Key} {kv.Value.Writes:N0}"))}; storage requests in the last 5 s: {(recentRequests.Length == 0 ? "none" : recentRequests)}");
            }
        });
        await using (var publisher = KeystonePublisher.Create(cluster.Client, options))
        {
            for (var i = 0; i < events.Length; i++)
            {
                var due = (long)(clock.Elapsed.TotalSeconds * rate);
                if (i >= due)
                {
                    await Task.Delay(1);
                    i--;
                    continue;
                }
                var result = await publisher.PublishAsync(events[i] with { EventId = Guid.NewGuid(), Timestamp = DateTimeOffset.UtcNow });
                if (!result.IsQueued) throw new InvalidOperationException($"event {i} was not queued: {result}");
            }
            await publisher.FlushAsync();
        }
        Console.WriteLine($"    aggregation: producer done after {clock.Elapsed.TotalSeconds:0.00} s");

        OperatorStats[] stats;
        while (true)
        {
            stats = await Task.WhenAll(operators.Select(o => o.GetStats()));
            if (stats.Sum(s => s.Events) >= expectedActivity) break;
            if (clock.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"operators saw {stats.Sum(s => s.Events)} of {expectedActivity} activity events");
            await Task.Delay(50);
        }
        var elapsed = clock.Elapsed;
        await stop.CancelAsync();
        await progress;

        // Writes counted are those made during the run: log appends, and the periodic checkpoints that fell in it.
        var after = metrics.ByKind();
        (long Writes, long Events) Delta(string kind)
        {
            var a = after.GetValueOrDefault(kind);
            var b = before.GetValueOrDefault(kind);
            return (a.Writes - b.Writes, a.Events - b.Events);
        }
        var kinds = new[] { "user", "video", "profile", "log", "operator" }.ToDictionary(k => k, Delta);
        return new AggregationResult(
            total,
            stats.Sum(s => s.Events),
            elapsed,
            LatencySnapshot.Merge(stats.Select(s => s.ApplyLag)),
            kinds["user"].Writes + kinds["video"].Writes + kinds["profile"].Writes,
            kinds["user"].Events + kinds["video"].Events + kinds["profile"].Events,
            kinds["log"].Writes,
            kinds["operator"].Writes,
            kinds);
    }

    /// <summary>What a cumulative histogram gained since an earlier snapshot of it: percentiles over an interval.</summary>
    private static (Func<double, double> Percentile, double Max) Since(LatencySnapshot now, LatencySnapshot before)
    {
        var counts = new SortedDictionary<int, long>();
        for (var i = 0; i < now.Indexes.Length; i++) counts[now.Indexes[i]] = now.Counts[i];
        for (var i = 0; i < before.Indexes.Length; i++) counts[before.Indexes[i]] = counts.GetValueOrDefault(before.Indexes[i]) - before.Counts[i];
        var kept = counts.Where(kv => kv.Value > 0).ToArray();
        var interval = new LatencySnapshot([.. kept.Select(kv => kv.Key)], [.. kept.Select(kv => kv.Value)], kept.Sum(kv => kv.Value), 0, long.MaxValue);
        var max = kept.Length == 0 ? 0 : LatencyHistogram.Representative(kept[^1].Key) / 1000.0;
        return (interval.Percentile, max);
    }

    /// <summary>
    /// Heap bytes per active user grain: activate N users with two viewing sessions each (eight events), force a full
    /// collection, and divide the growth of the live heap by N; then again after every user has checkpointed. Between
    /// barriers a grain also holds the inputs it applied since its last write (to redo them after a write conflict),
    /// so the first figure grows with events per checkpoint interval and the second is the floor. Orleans' own
    /// per-activation bookkeeping is included, since that is what an active user costs.
    /// </summary>
    public static async Task<(double BeforeCheckpoint, double AfterCheckpoint)> BytesPerUserGrain(BenchCluster cluster, int users)
    {
        var client = cluster.Silo.App.Services.GetRequiredService<IClusterClient>();
        // Warm the code paths and caches before measuring.
        await Activate(client, "mem-warm", 200);
        var baseline = LiveHeap();
        var ids = await Activate(client, "mem", users);
        var applied = LiveHeap();
        for (var i = 0; i < ids.Count; i += 64)
            await Task.WhenAll(ids.Skip(i).Take(64).Select(u => client.GetGrain<IUserGrain>(u).Checkpoint()));
        var checkpointed = LiveHeap();
        return ((applied - baseline) / (double)users, (checkpointed - baseline) / (double)users);
    }

    /// <summary>
    /// Heap per user once it is idle: users applied and checkpointed, then left alone until Orleans collects their
    /// activations (the cluster's <c>IdleEntityLifetime</c> must be short), against the heap before them; then every
    /// one is asked for its activity, counting the state reads that took a storage request and those answered from the
    /// snapshot buckets' memory.
    /// </summary>
    public static async Task<IdleUsers> BytesPerIdleUser(BenchCluster cluster, int users)
    {
        var client = cluster.Silo.App.Services.GetRequiredService<IClusterClient>();
        var store = cluster.Silo.App.Services.GetRequiredService<Keystone.Storage.SnapshotStore>();
        var warm = await Activate(client, "idle-warm", 200);
        await Checkpoint(client, warm);
        await NoUserActivations(client);
        // The names exist before the baseline: the bench's own list of them is not the users' cost.
        var ids = Enumerable.Range(0, users).Select(u => $"idle-{u:D6}").ToList();
        var baseline = LiveHeap();
        await Activate(client, ids);
        await Checkpoint(client, ids);
        var collecting = Stopwatch.StartNew();
        await NoUserActivations(client);
        var collected = collecting.Elapsed;
        var idle = LiveHeap();
        var kept = store.Warm.Bytes;
        var (warmReads, storageReads) = (store.Warm.Reads, store.StateReads().Values.Sum());
        var back = Stopwatch.StartNew();
        for (var i = 0; i < ids.Count; i += 64)
            await Task.WhenAll(ids.Skip(i).Take(64).Select(u => client.GetGrain<IUserGrain>(u).GetActivity(null, null)));
        return new IdleUsers((idle - baseline) / (double)users, kept / (double)users, collected, store.Warm.Reads - warmReads, store.StateReads().Values.Sum() - storageReads, back.Elapsed);
    }

    /// <param name="KeptPerUser">Of <paramref name="BytesPerUser"/>, what the snapshot buckets count for the kept states.</param>
    public sealed record IdleUsers(double BytesPerUser, double KeptPerUser, TimeSpan Collected, long WarmReads, long StorageReads, TimeSpan Returned);

    private static async Task Checkpoint(IClusterClient client, List<string> ids)
    {
        for (var i = 0; i < ids.Count; i += 64)
            await Task.WhenAll(ids.Skip(i).Take(64).Select(u => client.GetGrain<IUserGrain>(u).Checkpoint()));
    }

    // Waits on Orleans' own count of user activations, as collection takes them (every half lifetime).
    private static async Task NoUserActivations(IClusterClient client)
    {
        var management = client.GetGrain<IManagementGrain>(0);
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (true)
        {
            var stats = await management.GetSimpleGrainStatistics();
            var left = stats.Where(s => s.GrainType.Contains(nameof(UserGrain), StringComparison.Ordinal)).Sum(s => s.ActivationCount);
            if (left == 0) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{left} user activations still in memory after 5 minutes");
            await Task.Delay(500);
        }
    }

    private static long LiveHeap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static Task<List<string>> Activate(IClusterClient client, string prefix, int users) =>
        Activate(client, Enumerable.Range(0, users).Select(u => $"{prefix}-{u:D6}").ToList());

    private static async Task<List<string>> Activate(IClusterClient client, List<string> ids)
    {
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-20);
        var calls = new List<Task>();
        for (var u = 0; u < ids.Count; u++)
        {
            var user = ids[u];
            var events = new List<KeystoneEvent>();
            for (var s = 0; s < 2; s++)
            {
                var t = t0.AddMinutes(s * 7);
                foreach (var (type, offset, position) in new[] { ("video.play.started", 0, 0L), ("video.play.paused", 30, 30_000L), ("video.play.resumed", 70, 30_000L), ("video.play.stopped", 100, 60_000L) })
                {
                    events.Add(new KeystoneEvent(Guid.NewGuid(), type, t.AddSeconds(offset), "1.0", new EventSource("playback-service", "smart_tv", "us-east-1"),
                        Payload.Create(("user_id", user), ("profile_id", user + "-p"), ("video_id", $"video-{u % 500:D5}"), ("device_id", user + "-tv"), ("position_ms", position), ("quality", "HD")),
                        EventMetadata.Of(("trace_id", Guid.NewGuid().ToString("N")[..16]))));
                }
            }
            calls.Add(client.GetGrain<IUserGrain>(user).ApplyActivity(new ActivityBatch(0, 0, null, [.. events])).AsTask());
            // Modest concurrency: each activation reads its blob from Azurite, whose request rate is the limit here.
            if (calls.Count >= 64)
            {
                await Task.WhenAll(calls);
                calls.Clear();
            }
        }
        await Task.WhenAll(calls);
        return ids;
    }
}
