using System.Diagnostics;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Graph;
using Keystone.Topics;

namespace Keystone.Bench;

public sealed record GraphResult(
    long BuildEvents,
    TimeSpan BuildElapsed,
    long BuildEdgeUpdates,
    long WatchesEdges,
    long LoadEvents,
    TimeSpan LoadElapsed,
    long LoadEdgeUpdates,
    LatencySnapshot OneHop,
    LatencySnapshot OneHopIn,
    LatencySnapshot TwoHop,
    LatencySnapshot OneHopRest,
    int TwoHopCut)
{
    public double BuildEdgeUpdatesPerSecond => BuildEdgeUpdates / BuildElapsed.TotalSeconds;
    public double LoadEventsPerSecond => LoadEvents / LoadElapsed.TotalSeconds;
    public double LoadEdgeUpdatesPerSecond => LoadEdgeUpdates / LoadElapsed.TotalSeconds;
}

/// <summary>
/// The graph issue's benchmark: build a graph of users × titles × WATCHES edges from simulated traffic through the
/// whole path (SDK → ingest → router → graph operators → node grains, checkpointed to Azurite), then ingest playback
/// at a paced rate while one-hop and two-hop queries run through the Orleans client and REST.
/// </summary>
public static class GraphBenchmark
{
    private static readonly string[] Genres = ["drama", "comedy", "thriller", "documentary", "anime", "horror", "romance", "crime", "family", "scifi",
        "fantasy", "action", "kids", "reality", "music", "sports", "history", "war", "western", "mystery"];

    /// <summary>Only the graph rule: the other consumers (aggregations, ads, archive) would measure their own costs.</summary>
    public static string RulesFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"keystone-graph-rules-{Environment.ProcessId}.yaml");
        File.WriteAllText(path, """
            routing-rules:
              - name: "real-time-graph"
                condition: { event-type: ["video.play.*", "user.login", "user.profile_switch", "profile.created", "content.*"] }
                destinations:
                  - { topic: "graph-updates", priority: NORMAL }
            """);
        return path;
    }

    private static KeystoneEvent Event(string type, DateTimeOffset at, params (string, object?)[] payload) =>
        new(Guid.NewGuid(), type, at, "1.0", new EventSource("bench", "smart_tv", "us-east-1"), Payload.Create(payload), EventMetadata.Empty);

    // Popularity is skewed: low ids are the hits, as in a real catalogue.
    private static int Title(Random rng, int videos) => (int)(videos * Math.Pow(rng.NextDouble(), 2.5));

    private static KeystoneEvent Play(int user, int video, DateTimeOffset at, string type = "video.play.started", long position = 0) =>
        Event(type, at, ("user_id", $"gu{user}"), ("profile_id", $"gu{user}-p"), ("video_id", $"gv{video}"), ("device_id", $"gu{user}-tv"), ("position_ms", position), ("quality", "HD"));

    public static (KeystoneEvent[] Catalog, KeystoneEvent[] Graph, long Edges) Generate(int users, int videos, int titlesPerUser, int seed)
    {
        var rng = new Random(seed);
        var at = DateTimeOffset.UtcNow;
        var catalog = Enumerable.Range(0, videos).Select(v =>
        {
            List<(string, object?)> fields = [("video_id", $"gv{v}"), ("title", $"Title {v}"), ("genres", (string[])[Genres[v % Genres.Length], Genres[(v / 7) % Genres.Length]]), ("duration_ms", 3_000_000L)];
            if (v % 2 == 0) fields.Add(("series_id", $"gs{v / 20}"));
            return Event("content.added", at, [.. fields]);
        }).ToArray();

        var graph = new List<KeystoneEvent>(users * (titlesPerUser + 1));
        long edges = 0;
        for (var u = 0; u < users; u++) graph.Add(Event("profile.created", at, ("user_id", $"gu{u}"), ("profile_id", $"gu{u}-p")));
        // Users take turns, so every delivery touches many users (as live traffic does).
        var watched = new HashSet<int>[users];
        for (var round = 0; round < titlesPerUser; round++)
            for (var u = 0; u < users; u++)
            {
                var seen = watched[u] ??= [];
                int v;
                do v = Title(rng, videos); while (!seen.Add(v));
                graph.Add(Play(u, v, at));
                edges++;
            }
        return (catalog, [.. graph], edges);
    }

    public static async Task<GraphResult> Run(BenchCluster cluster, int users, int videos, int titlesPerUser, int rate, int seconds)
    {
        // The build publishes as fast as the graph takes it: the producer waits for room rather than giving up.
        var options = new PublisherOptions { MaxBatchEvents = 2_000, MaxInFlightBatches = 4, QueueCapacity = 200_000, MaxBlockTime = TimeSpan.FromMinutes(10), DeadLetterPath = "bench-deadletter.jsonl" };
        var operators = Enumerable.Range(0, cluster.Partitions).Select(p => cluster.Client.GetGrain<IGraphOperatorGrain>(StreamNames.PartitionKey(p))).ToArray();
        async Task<(long Events, long Updates)> Totals()
        {
            var s = await Task.WhenAll(operators.Select(o => o.GetStats()));
            return (s.Sum(x => x.Events), s.Sum(x => x.EdgeUpdates));
        }

        Console.WriteLine($"  graph: generating {users:N0} users × {titlesPerUser} titles of {videos:N0}...");
        var (catalog, build, edges) = Generate(users, videos, titlesPerUser, seed: 7);

        // The catalogue first (plays then find their genres), then the graph as fast as it goes.
        await Publish(cluster, catalog, options, rate: 0);
        await Drain(operators, catalog.Length, "catalogue");
        var clock = Stopwatch.StartNew();
        var (eventsBefore, updatesBefore) = await Totals();
        await Publish(cluster, build, options, rate: 0);
        await Drain(operators, eventsBefore + build.Length, "build");
        var buildElapsed = clock.Elapsed;
        var (_, updatesAfterBuild) = await Totals();
        Console.WriteLine($"  graph: built {edges:N0} WATCHES edges from {build.Length:N0} events in {buildElapsed.TotalSeconds:0.0} s ({(updatesAfterBuild - updatesBefore) / buildElapsed.TotalSeconds:N0} edge updates/s)");

        // Load: live playback (start, then stop 30 s of playhead later) at a paced rate, with queries alongside.
        var rng = new Random(11);
        var load = new KeystoneEvent[rate * seconds];
        for (var i = 0; i < load.Length; i += 2)
        {
            var (u, v) = (rng.Next(users), Title(rng, videos));
            load[i] = Play(u, v, DateTimeOffset.UtcNow);
            if (i + 1 < load.Length) load[i + 1] = Play(u, v, DateTimeOffset.UtcNow.AddSeconds(30), "video.play.stopped", 30_000);
        }
        var oneHop = new LatencyHistogram();
        var oneHopIn = new LatencyHistogram();
        var twoHop = new LatencyHistogram();
        var oneHopRest = new LatencyHistogram();
        var cut = 0;
        var query = cluster.Query;
        using var stop = new CancellationTokenSource();
        var queries = new[]
        {
            Ask(stop.Token, 200, oneHop, async r => Check(await query.GetGraphEdgesAsync(NodeType.User, $"gu{r.Next(users)}", EdgeLabel.Watches, limit: 20))),
            Ask(stop.Token, 100, oneHopIn, async r => Check(await query.GetGraphEdgesAsync(NodeType.Video, $"gv{Title(r, videos)}", EdgeLabel.Watches, EdgeDirection.In, limit: 20))),
            Ask(stop.Token, 200, twoHop, async r =>
            {
                var result = await query.GetAlsoWatchedAsync($"gu{r.Next(users)}", 10) ?? throw new InvalidOperationException("a built user is missing");
                if (result.Cut) Interlocked.Increment(ref cut);
            }),
            Ask(stop.Token, 100, oneHopRest, async r => (await cluster.Http.GetAsync($"/v1/graph/users/gu{r.Next(users)}/edges?label=WATCHES&limit=20")).EnsureSuccessStatusCode()),
        };

        var (loadEventsBefore, loadUpdatesBefore) = await Totals();
        clock.Restart();
        await Publish(cluster, load, options, rate);
        await Drain(operators, loadEventsBefore + load.Length, "load");
        var loadElapsed = clock.Elapsed;
        await stop.CancelAsync();
        await Task.WhenAll(queries);
        var (_, loadUpdatesAfter) = await Totals();

        return new GraphResult(build.Length, buildElapsed, updatesAfterBuild - updatesBefore, edges, load.Length, loadElapsed, loadUpdatesAfter - loadUpdatesBefore,
            oneHop.Snapshot(), oneHopIn.Snapshot(), twoHop.Snapshot(), oneHopRest.Snapshot(), cut);
    }

    private static void Check(EdgePage? page)
    {
        if (page is null) throw new InvalidOperationException("a built node is missing");
    }

    private static async Task Publish(BenchCluster cluster, KeystoneEvent[] events, PublisherOptions options, int rate)
    {
        var clock = Stopwatch.StartNew();
        await using var publisher = KeystonePublisher.Create(cluster.Client, options);
        for (var i = 0; i < events.Length; i++)
        {
            if (rate > 0 && i >= (long)(clock.Elapsed.TotalSeconds * rate))
            {
                await Task.Delay(1);
                i--;
                continue;
            }
            var result = await publisher.PublishAsync(events[i]);
            if (!result.IsQueued) throw new InvalidOperationException($"event {i} was not queued: {result}");
        }
        await publisher.FlushAsync();
    }

    private static async Task Drain(IGraphOperatorGrain[] operators, long expected, string what)
    {
        var clock = Stopwatch.StartNew();
        var last = TimeSpan.Zero;
        while (true)
        {
            var applied = (await Task.WhenAll(operators.Select(o => o.GetStats()))).Sum(s => s.Events);
            if (applied >= expected) return;
            if (clock.Elapsed - last > TimeSpan.FromSeconds(10))
            {
                last = clock.Elapsed;
                Console.WriteLine($"    graph {what}: {applied:N0} of {expected:N0} events applied after {clock.Elapsed.TotalSeconds:0} s");
            }
            if (clock.Elapsed > TimeSpan.FromMinutes(20)) throw new TimeoutException($"graph {what}: {applied:N0} of {expected:N0} applied after 20 minutes");
            await Task.Delay(200);
        }
    }

    private static Task Ask(CancellationToken stop, int perSecond, LatencyHistogram histogram, Func<Random, Task> ask) => Task.Run(async () =>
    {
        var rng = new Random(histogram.GetHashCode());
        var clock = Stopwatch.StartNew();
        long asked = 0;
        while (!stop.IsCancellationRequested)
        {
            if (asked >= (long)(clock.Elapsed.TotalSeconds * perSecond))
            {
                try { await Task.Delay(1, stop); } catch (OperationCanceledException) { break; }
                continue;
            }
            asked++;
            var started = Stopwatch.GetTimestamp();
            await ask(rng);
            histogram.Record((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
    });
}
