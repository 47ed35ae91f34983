using System.Globalization;
using BenchmarkDotNet.Running;
using Keystone.Bench;
using Keystone.Client.Publishing;
using Keystone;
using Keystone.LocalInfra;

// dotnet run -c Release --project bench/Keystone.Bench -- [pipeline|validation|all] [--events N] [--baseline-events N]
//   [--latency-rate R] [--latency-seconds S] [--rest-events N]
var scenario = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "pipeline";
int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

#if DEBUG
Console.WriteLine("WARNING: this is a Debug build; run with -c Release for figures worth quoting.");
#endif

if (scenario is "validation" or "all")
{
    BenchmarkRunner.Run<ValidationBenchmarks>(args: args.Where(a => a is not ("validation" or "all")).ToArray());
    if (scenario == "validation") return 0;
}
if (scenario is not ("pipeline" or "all"))
{
    Console.Error.WriteLine($"unknown scenario '{scenario}' (pipeline, validation, all)");
    return 2;
}

var eventCount = Arg("--events", 500_000);
var baselineCount = Arg("--baseline-events", 50_000);
var latencyRate = Arg("--latency-rate", 50_000);
var latencySeconds = Arg("--latency-seconds", 20);
var restCount = Arg("--rest-events", 300_000);
var onlyIndex = Array.IndexOf(args, "--only");
var only = onlyIndex >= 0 && onlyIndex + 1 < args.Length ? args[onlyIndex + 1] : null;
bool Selected(string name) => only is null || name.StartsWith(only, StringComparison.Ordinal);

using var allocations = args.Contains("--alloc-profile") ? new AllocationProfiler() : null;
Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}");
Console.WriteLine("Starting Azurite (in memory)...");
await using var azurite = await AzuriteProcess.StartAsync();

var needed = new[] { (Selected("batched"), eventCount), (Selected("one-event"), baselineCount), (Selected("paced"), latencyRate * latencySeconds), (Selected("rest"), restCount) }
    .Where(x => x.Item1).Select(x => x.Item2).DefaultIfEmpty(0).Max();
var events = PipelineBenchmark.Generate(needed, seed: 1);
var warmUp = PipelineBenchmark.Generate(Arg("--warm-up-events", 100_000), seed: 2);
var results = new List<RunResult>();
var throughputOptions = new PublisherOptions { MaxBatchEvents = 2_000, MaxInFlightBatches = 4, QueueCapacity = 200_000, DeadLetterPath = "bench-deadletter.jsonl" };

async Task<RunResult> Run(string name, IDictionary<string, string?> settings, Func<BenchCluster, Task<RunResult>> body)
{
    if (!Selected(name)) return new RunResult(name + " (skipped)", 1, 0, TimeSpan.FromSeconds(1), LatencySnapshot.Empty);
    Console.WriteLine($"Running {name}...");
    await using var cluster = await BenchCluster.StartAsync(azurite, settings);
    await PipelineBenchmark.WarmUp(cluster, warmUp, throughputOptions);
    Console.WriteLine($"  {name}: warmed up, measuring");
    allocations?.Reset();
    var pauseBefore = GC.GetTotalPauseDuration();
    var allocatedBefore = GC.GetTotalAllocatedBytes();
    var cpuBefore = Environment.CpuUsage.TotalTime;
    var result = await body(cluster);
    var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
    Console.WriteLine($"  {name}: CPU {cpu.TotalSeconds:0.0} s ({cpu.TotalSeconds / result.Elapsed.TotalSeconds / Environment.ProcessorCount:P0} of the machine), GC pauses {(GC.GetTotalPauseDuration() - pauseBefore).TotalSeconds:0.00} s, allocated {(GC.GetTotalAllocatedBytes() - allocatedBefore) / 1e9:0.0} GB ({(GC.GetTotalAllocatedBytes() - allocatedBefore) / (double)result.Events:N0} B/event)");
    Console.WriteLine($"  {name}: {result.Events:N0} events, {result.Deliveries:N0} deliveries in {result.Elapsed.TotalSeconds:0.00} s = {result.EventsPerSecond:N0} events/s; publish->tap p50 {result.Latency.Percentile(0.5):0.0} ms, p99 {result.Latency.Percentile(0.99):0.0} ms");
    results.Add(result);
    return result;
}


// 1. Throughput: as fast as the producer can go, batched stream messages.
var slice = events[..Math.Min(eventCount, events.Length)];
var extra = args.Where(a => a.StartsWith("--Keystone:", StringComparison.Ordinal)).Select(a => a[2..].Split('=', 2)).ToDictionary(kv => kv[0], kv => (string?)kv[1]);
if (extra.TryGetValue("Keystone:Routing:RulesFile", out var rulesFile) && rulesFile is not null) PipelineBenchmark.RulesPath = rulesFile;
var batched = await Run("batched", new Dictionary<string, string?>(extra), c => PipelineBenchmark.RunSdk(c, "batched", slice, PipelineBenchmark.ExpectedDeliveries(slice), throughputOptions));

// 2. The same pipeline with one event per stream message (the baseline batching is measured against).
var baselineSlice = events[..Math.Min(baselineCount, events.Length)];
var baseline = await Run("one-event-per-message", new Dictionary<string, string?> { ["Keystone:Ingest:MaxEventsPerStreamMessage"] = "1" },
    c => PipelineBenchmark.RunSdk(c, "one-event-per-message", baselineSlice, PipelineBenchmark.ExpectedDeliveries(baselineSlice), throughputOptions));

// 3. Latency at a steady rate with the SDK's default batching (1,000 events or 100 ms).
var latencySlice = events[..Math.Min(latencyRate * latencySeconds, events.Length)];
var latency = await Run($"paced-{latencyRate / 1000}k", new Dictionary<string, string?>(),
    c => PipelineBenchmark.RunSdk(c, $"paced-{latencyRate / 1000}k", latencySlice, PipelineBenchmark.ExpectedDeliveries(latencySlice), new PublisherOptions { DeadLetterPath = "bench-deadletter.jsonl", QueueCapacity = 200_000 }, latencyRate));

// 4. REST JSON ingest.
var restSlice = events[..Math.Min(restCount, events.Length)];
var rest = await Run("rest-json", new Dictionary<string, string?>(), c => PipelineBenchmark.RunRest(c, "rest-json", restSlice, PipelineBenchmark.ExpectedDeliveries(restSlice), eventsPerRequest: 1_000, concurrency: 4));

allocations?.Report();
Console.WriteLine();
Console.WriteLine("| run | events | deliveries | seconds | events/s | publish→tap p50 ms | p99 ms |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
foreach (var r in results)
    Console.WriteLine($"| {r.Name} | {r.Events:N0} | {r.Deliveries:N0} | {r.Elapsed.TotalSeconds:0.00} | {r.EventsPerSecond:N0} | {(r.Latency.Count == 0 ? "-" : r.Latency.Percentile(0.5).ToString("0.0", CultureInfo.InvariantCulture))} | {(r.Latency.Count == 0 ? "-" : r.Latency.Percentile(0.99).ToString("0.0", CultureInfo.InvariantCulture))} |");
Console.WriteLine();
Console.WriteLine($"batched / one-event-per-message: {batched.EventsPerSecond / baseline.EventsPerSecond:0.0}x");
Console.WriteLine($"targets: e2e >= 100,000/s: {(batched.EventsPerSecond >= 100_000 ? "met" : "NOT met")}; p99 <= 250 ms at {latencyRate:N0}/s: {(latency.Latency.Percentile(0.99) <= 250 ? "met" : "NOT met")}; >= 8x baseline: {(batched.EventsPerSecond >= 8 * baseline.EventsPerSecond ? "met" : "NOT met")}; REST >= 50,000/s: {(rest.EventsPerSecond >= 50_000 ? "met" : "NOT met")}");
return 0;
