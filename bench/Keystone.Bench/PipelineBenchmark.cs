using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using Keystone.Client.Publishing;
using Keystone.Client.Simulation;
using Keystone.Events;
using Keystone.Routing;
using Keystone.Schemas;

namespace Keystone.Bench;

/// <summary>One measured run: events in, deliveries to taps, time, and publish-to-tap latency.</summary>
public sealed record RunResult(string Name, long Events, long Deliveries, TimeSpan Elapsed, LatencySnapshot Latency)
{
    public double EventsPerSecond => Events / Elapsed.TotalSeconds;
    public double DeliveriesPerSecond => Deliveries / Elapsed.TotalSeconds;
}

/// <summary>
/// End-to-end runs: events go through the SDK (or REST), ingest, the fronting topic, the routers and every target
/// topic to the taps. A run ends when the taps have counted exactly the deliveries the rules predict.
/// </summary>
public static class PipelineBenchmark
{
    public static KeystoneEvent[] Generate(int count, int seed) =>
        Generate(count, new SimulationOptions { Users = 20_000, Videos = 2_000, ConcurrentSessions = 4_000, Seed = seed });

    public static KeystoneEvent[] Generate(int count, SimulationOptions population)
    {
        var simulator = new TrafficSimulator(population);
        var now = DateTimeOffset.UtcNow;
        var events = new KeystoneEvent[count];
        for (var i = 0; i < count; i++) events[i] = simulator.Next(now);
        return events;
    }

    /// <summary>How many (event, topic) deliveries the shipped rules make of these events.</summary>
    public static string RulesPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "routing-rules.yaml");

    public static long ExpectedDeliveries(IReadOnlyList<KeystoneEvent> events) => ExpectedByTopic(events).Values.Sum();

    /// <summary>Deliveries per topic the rules make of these events (topics the aggregations emit to are not counted).</summary>
    public static Dictionary<string, long> ExpectedByTopic(IReadOnlyList<KeystoneEvent> events)
    {
        var engine = new RoutingEngine(RuleSetParser.Parse(File.ReadAllText(RulesPath), "routing-rules.yaml", TransformSettings.Default(SchemaRegistry.Embedded)));
        var routed = engine.Route(events, 0, DateTimeOffset.UtcNow);
        var expected = routed.Topics.ToDictionary(t => t.Key, t => (long)t.Value.Events.Count);
        if (routed.Unrouted.Count > 0) expected[Topics.StreamNames.Unrouted] = routed.Unrouted.Count;
        return expected;
    }

    private static HashSet<string>? s_ruleTopics;

    private static HashSet<string> RuleTopics() =>
        s_ruleTopics ??= [.. RuleSetParser.Parse(File.ReadAllText(RulesPath), "routing-rules.yaml", TransformSettings.Default(SchemaRegistry.Embedded)).StaticTopics.Keys, Topics.StreamNames.Unrouted];

    /// <summary>
    /// Pushes some traffic through a fresh cluster and waits for it, so the measured run sees jitted, tiered-up code
    /// and activated grains rather than start-up costs.
    /// </summary>
    public static async Task WarmUp(BenchCluster cluster, KeystoneEvent[] events, PublisherOptions options)
    {
        var (deliveries, work) = OperatorProgress.Expected(events);
        // The run after the warm-up counts the operators' progress from here, so they must have finished the warm-up.
        var operators = await OperatorProgress.Read(cluster) + work;
        await using (var publisher = KeystonePublisher.Create(cluster.Client, options))
        {
            foreach (var e in events) await publisher.PublishAsync(e with { EventId = Guid.NewGuid(), Timestamp = DateTimeOffset.UtcNow });
            await publisher.FlushAsync();
        }
        await WaitForTaps(cluster, "warm-up", events.Length, deliveries, Stopwatch.StartNew(), 0);
        await OperatorProgress.WaitFor(cluster, "warm-up", operators);
        await ResetTaps(cluster);
    }

    public static async Task<RunResult> RunSdk(BenchCluster cluster, string name, KeystoneEvent[] events, long expectedDeliveries, PublisherOptions options, double? ratePerSecond = null)
    {
        var clock = Stopwatch.StartNew();
        await using (var publisher = KeystonePublisher.Create(cluster.Client, options))
        {
            for (var i = 0; i < events.Length; i++)
            {
                if (ratePerSecond is { } rate)
                {
                    // Paced: publish what is due, then yield a millisecond.
                    var due = (long)(clock.Elapsed.TotalSeconds * rate);
                    if (i >= due)
                    {
                        await Task.Delay(1);
                        i--;
                        continue;
                    }
                }
                // Fresh ids: the same generated events are replayed by several runs, and routers drop repeats.
                var result = await publisher.PublishAsync(events[i] with { EventId = Guid.NewGuid(), Timestamp = DateTimeOffset.UtcNow });
                if (!result.IsQueued) throw new InvalidOperationException($"event {i} was not queued: {result}");
            }
            await publisher.FlushAsync();
            Console.WriteLine($"    {name}: producer done after {clock.Elapsed.TotalSeconds:0.00} s ({events.Length / clock.Elapsed.TotalSeconds:N0} events/s accepted by ingest)");
            var metrics = publisher.Metrics.Snapshot();
            if (metrics.DeadLettered > 0 || metrics.Rejected > 0)
                throw new InvalidOperationException($"{name}: {metrics.DeadLettered} dead-lettered, {metrics.Rejected} rejected");
        }
        return await WaitForTaps(cluster, name, events.Length, expectedDeliveries, clock);
    }

    /// <summary>The saturation run's producer: held back by ingest (which answers once the fronting log has the batch), never giving up.</summary>
    public static PublisherOptions SaturationPublisher(int queueCapacity) =>
        new() { MaxBatchEvents = 2_000, MaxInFlightBatches = 4, QueueCapacity = queueCapacity, MaxBlockTime = TimeSpan.FromMinutes(5), DeadLetterPath = "bench-deadletter.jsonl" };

    /// <summary>As <see cref="RunSdk"/>, with the producer in its own process (see <see cref="ExternalProducer"/>).</summary>
    public static async Task<RunResult> RunExternal(BenchCluster cluster, string name, BenchChild producer, int events, long expectedDeliveries)
    {
        var clock = Stopwatch.StartNew();
        var report = await ExternalProducer.PublishAsync(producer);
        Console.WriteLine($"    {name}: producer process done after {report.Elapsed.TotalSeconds:0.00} s ({events / report.Elapsed.TotalSeconds:N0} events/s accepted by ingest); " +
            $"its own CPU {report.Cpu.TotalSeconds:0.0} s, GC pauses {report.GcPauses.TotalSeconds:0.00} s, allocated {report.AllocatedBytes / (double)events:N0} B/event (not in the figures below)");
        return await WaitForTaps(cluster, name, events, expectedDeliveries, clock);
    }

    public static async Task<RunResult> RunRest(BenchCluster cluster, string name, KeystoneEvent[] events, long expectedDeliveries, int eventsPerRequest, int concurrency)
    {
        // Bodies are built up front: this measures the gateway and the pipeline, not the client's JSON writer.
        var bodies = events.Chunk(eventsPerRequest)
            .Select(chunk => Encoding.UTF8.GetBytes("[" + string.Join(",", chunk.Select(e => EventJson.Serialize(e))) + "]"))
            .ToArray();
        var next = -1;
        long accepted = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < bodies.Length)
            {
                using var content = new ByteArrayContent(bodies[i]);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await cluster.Http.PostAsync("/v1/events", content);
                var text = await response.Content.ReadAsStringAsync();
                if ((int)response.StatusCode != 202) throw new InvalidOperationException($"REST ingest answered {(int)response.StatusCode}: {text}");
                using var doc = System.Text.Json.JsonDocument.Parse(text);
                Interlocked.Add(ref accepted, doc.RootElement.GetProperty("accepted").GetInt32());
            }
        }));
        var ingestElapsed = clock.Elapsed;
        if (accepted != events.Length) throw new InvalidOperationException($"{name}: accepted {accepted} of {events.Length}");
        Console.WriteLine($"  {name}: REST accepted {accepted:N0} events in {ingestElapsed.TotalSeconds:0.00} s = {accepted / ingestElapsed.TotalSeconds:N0} events/s (202 = in the fronting topic)");
        var endToEnd = await WaitForTaps(cluster, name, events.Length, expectedDeliveries, clock);
        // Bodies were stamped when they were built, before the clock started, so their lag says nothing here.
        return endToEnd with { Latency = LatencySnapshot.Empty, Elapsed = ingestElapsed };
    }

    public static async Task ResetTaps(BenchCluster cluster)
    {
        foreach (var topic in await cluster.Query.GetTopicsAsync()) await cluster.Query.ResetTopicAsync(topic.Name);
    }

    private static async Task<RunResult> WaitForTaps(BenchCluster cluster, string name, long events, long expectedDeliveries, Stopwatch clock, int unused = 0)
    {
        var query = cluster.Query;
        var lastProgress = TimeSpan.Zero;
        while (true)
        {
            var topics = (await query.GetTopicsAsync()).Where(t => RuleTopics().Contains(t.Name)).ToList();
            var delivered = topics.Sum(t => t.Delivered);
            if (delivered >= expectedDeliveries)
            {
                var elapsed = clock.Elapsed;
                if (delivered != expectedDeliveries)
                    throw new InvalidOperationException($"{name}: taps counted {delivered} deliveries, the rules predict {expectedDeliveries}");
                return new RunResult(name, events, delivered, elapsed, LatencySnapshot.Merge(topics.Select(t => t.Lag)));
            }
            if (clock.Elapsed - lastProgress > TimeSpan.FromSeconds(5))
            {
                lastProgress = clock.Elapsed;
                Console.WriteLine($"    ... {name}: {delivered:N0} of {expectedDeliveries:N0} deliveries after {clock.Elapsed.TotalSeconds:0} s");
            }
            if (clock.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"{name}: only {delivered} of {expectedDeliveries} deliveries after 10 minutes");
            await Task.Delay(50);
        }
    }
}
