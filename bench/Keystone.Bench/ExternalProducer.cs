using System.Diagnostics;
using System.Globalization;
using Keystone.Client.Hosting;
using Keystone.Client.Publishing;
using Keystone.Client.Querying;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keystone.Bench;

/// <summary>
/// A client of the benchmark's cluster in a process of its own: this bench's dll started with a verb
/// (<c>produce</c>, <c>ask</c>). It says "ready" once it has its client, starts on "go", and answers with one line that
/// starts with "done ". In the default runs the clients share the bench's process with the silo: their allocations,
/// queues and threads are counted and paid as the silo's, and their continuations wait in the silo's thread pool.
/// </summary>
public sealed class BenchChild : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private BenchChild(Process process, string name)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { _ready.TrySetResult(false); _result.TrySetException(new InvalidOperationException($"the {name} process ended ({Exited()})")); return; }
            if (e.Data == "ready") _ready.TrySetResult(true);
            else if (e.Data.StartsWith("done ", StringComparison.Ordinal)) _result.TrySetResult(e.Data[5..]);
            else Console.WriteLine($"    {name}: " + e.Data);
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.WriteLine($"    {name}: " + e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private string Exited() => _process.HasExited ? $"exit code {_process.ExitCode}" : "still running";

    /// <summary>Starts <c>Keystone.Bench {verb}</c> joined to <paramref name="cluster"/> and waits until it is ready.</summary>
    public static BenchChild Start(BenchCluster cluster, string verb, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(typeof(BenchChild).Assembly.Location);
        foreach (var a in (string[])[verb, "--cluster-id", cluster.ClusterId, "--gateways", string.Join(',', cluster.Gateways), .. args]) psi.ArgumentList.Add(a);
        var child = new BenchChild(Process.Start(psi)!, verb);
        if (!child._ready.Task.Wait(TimeSpan.FromMinutes(2)) || !child._ready.Task.Result)
            throw new InvalidOperationException($"the {verb} process did not get ready ({child.Exited()})");
        return child;
    }

    public async Task SendAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>The child's "done" line (without "done "), once it has exited.</summary>
    public async Task<string[]> ResultAsync()
    {
        var parts = (await _result.Task).Split(' ');
        await _process.WaitForExitAsync();
        return parts;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    /// <summary>The child's side: an Orleans client of the cluster named by <c>--cluster-id</c> and <c>--gateways</c>.</summary>
    public static async Task<IHost> ConnectAsync(Func<string, string?> arg)
    {
        var clusterId = arg("--cluster-id") ?? throw new ArgumentException("--cluster-id is required");
        var gateways = (arg("--gateways") ?? throw new ArgumentException("--gateways is required")).Split(',').ToList();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(c => c.UseKeystoneCluster(new KeystoneClientOptions { Gateways = gateways, ClusterId = clusterId }));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}

/// <summary>
/// The saturation run's producer in a process of its own (<c>--producer-process</c>): the counters the bench reads are
/// then the silo's alone (with the bench's query client), and the producer reports its own.
/// </summary>
public static class ExternalProducer
{
    public static BenchChild Start(BenchCluster cluster, int events, int seed, int producerQueue) =>
        BenchChild.Start(cluster, "produce", "--events", events.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture),
            "--producer-queue", producerQueue.ToString(CultureInfo.InvariantCulture));

    /// <summary>Tells the producer to publish, and returns once it has flushed: its elapsed time, CPU, bytes and GC pauses.</summary>
    public static async Task<ProducerReport> PublishAsync(BenchChild producer)
    {
        await producer.SendAsync("go");
        var parts = await producer.ResultAsync();
        return new ProducerReport(
            TimeSpan.FromSeconds(double.Parse(parts[0], CultureInfo.InvariantCulture)),
            TimeSpan.FromSeconds(double.Parse(parts[1], CultureInfo.InvariantCulture)),
            long.Parse(parts[2], CultureInfo.InvariantCulture),
            TimeSpan.FromSeconds(double.Parse(parts[3], CultureInfo.InvariantCulture)));
    }

    /// <summary>The child's side: <c>Keystone.Bench produce --events N --seed S --producer-queue Q --cluster-id C --gateways h:p,...</c>.</summary>
    public static async Task<int> RunChildAsync(Func<string, string?> arg)
    {
        var count = int.Parse(arg("--events") ?? throw new ArgumentException("--events is required"), CultureInfo.InvariantCulture);
        var seed = int.Parse(arg("--seed") ?? "1", CultureInfo.InvariantCulture);
        var queue = int.Parse(arg("--producer-queue") ?? "200000", CultureInfo.InvariantCulture);

        // The same events, in the same order, as the parent's run over the first `count` (the simulator is seeded).
        var events = PipelineBenchmark.Generate(count, seed);
        using var host = await BenchChild.ConnectAsync(arg);
        var client = host.Services.GetRequiredService<IClusterClient>();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 2;

        var pauseBefore = GC.GetTotalPauseDuration();
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var clock = Stopwatch.StartNew();
        await using (var publisher = KeystonePublisher.Create(client, PipelineBenchmark.SaturationPublisher(queue)))
        {
            foreach (var e in events)
            {
                var result = await publisher.PublishAsync(e with { EventId = Guid.NewGuid(), Timestamp = DateTimeOffset.UtcNow });
                if (!result.IsQueued) throw new InvalidOperationException($"an event was not queued: {result}");
            }
            await publisher.FlushAsync();
            var metrics = publisher.Metrics.Snapshot();
            if (metrics.DeadLettered > 0 || metrics.Rejected > 0)
                throw new InvalidOperationException($"{metrics.DeadLettered} dead-lettered, {metrics.Rejected} rejected");
        }
        var elapsed = clock.Elapsed;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done {elapsed.TotalSeconds} {(Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds} {GC.GetTotalAllocatedBytes() - allocatedBefore} {(GC.GetTotalPauseDuration() - pauseBefore).TotalSeconds}"));
        await host.StopAsync();
        return 0;
    }
}

public sealed record ProducerReport(TimeSpan Elapsed, TimeSpan Cpu, long AllocatedBytes, TimeSpan GcPauses);

/// <summary>
/// The ads run's ad server in a process of its own (<c>--asker-process</c>): it asks eligibility questions through its
/// own Orleans client, as an ad server would, so that its answers' latency is not the time its continuations waited
/// in the silo's thread pool.
/// </summary>
public static class ExternalAsker
{
    public static BenchChild Start(BenchCluster cluster, int perSecond, int campaigns, int profiles) =>
        BenchChild.Start(cluster, "ask", "--per-second", perSecond.ToString(CultureInfo.InvariantCulture), "--partitions", cluster.Partitions.ToString(CultureInfo.InvariantCulture),
            "--campaigns", campaigns.ToString(CultureInfo.InvariantCulture), "--profiles", profiles.ToString(CultureInfo.InvariantCulture));

    /// <summary>Stops the asker; its answers' count and latency percentiles (ms).</summary>
    public static async Task<(long Count, double P50, double P99, double P999, double Max)> StopAsync(BenchChild asker)
    {
        await asker.SendAsync("stop");
        var p = (await asker.ResultAsync()).Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        return ((long)p[0], p[1], p[2], p[3], p[4]);
    }

    /// <summary>The child's side: <c>Keystone.Bench ask --per-second R --partitions P --campaigns C --profiles N --cluster-id C --gateways h:p,...</c>.</summary>
    public static async Task<int> RunChildAsync(Func<string, string?> arg)
    {
        var perSecond = int.Parse(arg("--per-second") ?? "400", CultureInfo.InvariantCulture);
        var partitions = int.Parse(arg("--partitions") ?? throw new ArgumentException("--partitions is required"), CultureInfo.InvariantCulture);
        var campaigns = int.Parse(arg("--campaigns") ?? throw new ArgumentException("--campaigns is required"), CultureInfo.InvariantCulture);
        var profiles = int.Parse(arg("--profiles") ?? throw new ArgumentException("--profiles is required"), CultureInfo.InvariantCulture);
        using var host = await BenchChild.ConnectAsync(arg);
        var query = new KeystoneQueryClient(host.Services.GetRequiredService<IClusterClient>(), partitions);
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 2;

        using var stop = new CancellationTokenSource();
        var histogram = new LatencyHistogram();
        var asking = AdsBenchmark.AskEligibility(stop.Token, perSecond, histogram, (c, p) => query.CheckEligibilityAsync(c, p), campaigns, profiles);
        while (Console.ReadLine() is { } line && line != "stop") { }
        await stop.CancelAsync();
        await asking;
        var s = histogram.Snapshot();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done {s.Count} {s.Percentile(0.5)} {s.Percentile(0.99)} {s.Percentile(0.999)} {s.MaxMillis}"));
        await host.StopAsync();
        return 0;
    }
}

/// <summary>
/// The ads run's producer in a process of its own (<c>--ads-producer-process</c>): the measured timeline, each event
/// published when due with the run's publisher settings.
/// </summary>
public static class ExternalAdsProducer
{
    public static BenchChild Start(BenchCluster cluster, int rate, int seconds, PublisherOptions options) =>
        BenchChild.Start(cluster, "produce-ads", "--rate", rate.ToString(CultureInfo.InvariantCulture), "--seconds", seconds.ToString(CultureInfo.InvariantCulture),
            "--linger-ms", options.Linger.TotalMilliseconds.ToString(CultureInfo.InvariantCulture), "--in-flight", options.MaxInFlightBatches.ToString(CultureInfo.InvariantCulture));

    /// <summary>Tells the producer to publish; returns once it has flushed: its elapsed seconds, GC pause seconds,
    /// batches, and batch flush latency p50 and p99 in ms (first event queued → batch acknowledged).</summary>
    public static async Task<(double Seconds, double GcPauses, long Batches, double FlushP50, double FlushP99)> PublishAsync(BenchChild producer)
    {
        await producer.SendAsync("go");
        var p = (await producer.ResultAsync()).Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        return (p[0], p[1], (long)p[2], p[3], p[4]);
    }

    /// <summary>The child's side: <c>Keystone.Bench produce-ads --rate R --seconds S --linger-ms L --in-flight N --cluster-id C --gateways h:p,...</c>.</summary>
    public static async Task<int> RunChildAsync(Func<string, string?> arg)
    {
        int Int(string name) => int.Parse(arg(name) ?? throw new ArgumentException($"{name} is required"), CultureInfo.InvariantCulture);
        var timeline = AdsBenchmark.MeasuredTimeline(Int("--rate"), Int("--seconds"));
        var options = new PublisherOptions
        {
            Linger = TimeSpan.FromMilliseconds(double.Parse(arg("--linger-ms") ?? "5", CultureInfo.InvariantCulture)),
            MaxInFlightBatches = Int("--in-flight"),
            QueueCapacity = 200_000,
            DeadLetterPath = "bench-deadletter.jsonl",
        };
        using var host = await BenchChild.ConnectAsync(arg);
        var client = host.Services.GetRequiredService<IClusterClient>();
        // A producer that has published before: its first batches of the run no longer pay for the publish path's
        // first calls (JIT, the gateway connection's buffers), which had made the run's first quarter-second its worst.
        await AdsBenchmark.PublishAsync(client, AdsBenchmark.ProducerWarmUpTimeline(), options);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 2;

        var pauseBefore = GC.GetTotalPauseDuration();
        var clock = Stopwatch.StartNew();
        var sent = await AdsBenchmark.PublishAsync(client, timeline, options);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done {clock.Elapsed.TotalSeconds} {(GC.GetTotalPauseDuration() - pauseBefore).TotalSeconds} {sent.Batches} {sent.FlushLatency.Percentile(0.5)} {sent.FlushLatency.Percentile(0.99)}"));
        await host.StopAsync();
        return 0;
    }
}
