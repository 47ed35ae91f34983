using System.Diagnostics;
using System.Globalization;
using Keystone.Client.Hosting;
using Keystone.Client.Publishing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keystone.Bench;

/// <summary>
/// The saturation run's producer in a process of its own (<c>--producer-process</c>). In the default run the SDK
/// publishes from the bench's process, which also hosts the silo: its queue of up to 200,000 stamped copies, its batch
/// encoding and LZ4 compression are on the silo's heap, in its allocation count and in its GC pauses. Here the counters
/// the bench reads are the silo's alone (with the bench's query client), and the producer reports its own.
/// </summary>
public sealed class ExternalProducer : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _done;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ExternalProducer(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { _ready.TrySetResult(false); _result.TrySetException(new InvalidOperationException($"the producer process ended ({Exited()})")); return; }
            if (e.Data == "ready") _ready.TrySetResult(true);
            else if (e.Data.StartsWith("done ", StringComparison.Ordinal)) _result.TrySetResult(e.Data[5..]);
            else Console.WriteLine("    producer: " + e.Data);
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.WriteLine("    producer: " + e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _done = _result.Task;
    }

    private string Exited() => _process.HasExited ? $"exit code {_process.ExitCode}" : "still running";

    /// <summary>Starts the producer and waits until it has its events and its client: the run's clock starts after that.</summary>
    public static ExternalProducer Start(BenchCluster cluster, int events, int seed, int producerQueue)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(typeof(ExternalProducer).Assembly.Location);
        foreach (var a in new[] { "produce", "--events", events.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture),
                     "--producer-queue", producerQueue.ToString(CultureInfo.InvariantCulture), "--cluster-id", cluster.ClusterId, "--gateways", string.Join(',', cluster.Gateways) })
            psi.ArgumentList.Add(a);
        var producer = new ExternalProducer(Process.Start(psi)!);
        if (!producer._ready.Task.Wait(TimeSpan.FromMinutes(2)) || !producer._ready.Task.Result)
            throw new InvalidOperationException($"the producer process did not get ready ({producer.Exited()})");
        return producer;
    }

    /// <summary>Tells the producer to publish, and returns once it has flushed: its elapsed time, CPU, bytes and GC pauses.</summary>
    public async Task<ProducerReport> PublishAsync()
    {
        await _process.StandardInput.WriteLineAsync("go");
        await _process.StandardInput.FlushAsync();
        var parts = (await _done).Split(' ');
        await _process.WaitForExitAsync();
        return new ProducerReport(
            TimeSpan.FromSeconds(double.Parse(parts[0], CultureInfo.InvariantCulture)),
            TimeSpan.FromSeconds(double.Parse(parts[1], CultureInfo.InvariantCulture)),
            long.Parse(parts[2], CultureInfo.InvariantCulture),
            TimeSpan.FromSeconds(double.Parse(parts[3], CultureInfo.InvariantCulture)));
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    /// <summary>The child's side: <c>Keystone.Bench produce --events N --seed S --producer-queue Q --cluster-id C --gateways h:p,...</c>.</summary>
    public static async Task<int> RunChildAsync(Func<string, string?> arg)
    {
        var count = int.Parse(arg("--events") ?? throw new ArgumentException("--events is required"), CultureInfo.InvariantCulture);
        var seed = int.Parse(arg("--seed") ?? "1", CultureInfo.InvariantCulture);
        var queue = int.Parse(arg("--producer-queue") ?? "200000", CultureInfo.InvariantCulture);
        var clusterId = arg("--cluster-id") ?? throw new ArgumentException("--cluster-id is required");
        var gateways = (arg("--gateways") ?? throw new ArgumentException("--gateways is required")).Split(',').ToList();

        // The same events, in the same order, as the parent's run over the first `count` (the simulator is seeded).
        var events = PipelineBenchmark.Generate(count, seed);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(c => c.UseKeystoneCluster(new KeystoneClientOptions { Gateways = gateways, ClusterId = clusterId }));
        using var host = builder.Build();
        await host.StartAsync();
        var client = host.Services.GetRequiredService<IClusterClient>();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 2;

        var pauseBefore = GC.GetTotalPauseDuration();
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var clock = Stopwatch.StartNew();
        var options = PipelineBenchmark.SaturationPublisher(queue);
        await using (var publisher = KeystonePublisher.Create(client, options))
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
