using System.Diagnostics;
using Keystone.Client.Publishing;

namespace Keystone.Client.Simulation;

/// <summary>A once-a-second view of a simulation for progress lines.</summary>
public sealed record SimulationProgress(TimeSpan Elapsed, long Generated, double RatePerSecond, PublisherSnapshot Publisher);

/// <summary>Feeds a publisher from a simulator at a steady rate, reporting progress every second.</summary>
public static class SimulationRunner
{
    public static async Task<long> RunAsync(
        TrafficSimulator simulator,
        KeystonePublisher publisher,
        double ratePerSecond,
        TimeSpan? duration,
        Action<SimulationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        var clock = Stopwatch.StartNew();
        long sent = 0;
        var nextReport = TimeSpan.FromSeconds(1);
        long sentAtLastReport = 0;
        var lastReport = TimeSpan.Zero;
        while (!cancellationToken.IsCancellationRequested && (duration is null || clock.Elapsed < duration))
        {
            var due = (long)(clock.Elapsed.TotalSeconds * ratePerSecond);
            while (sent < due && !cancellationToken.IsCancellationRequested)
            {
                await publisher.PublishAsync(simulator.Next(DateTimeOffset.UtcNow), cancellationToken);
                sent++;
            }
            if (progress is not null && clock.Elapsed >= nextReport)
            {
                var elapsed = clock.Elapsed;
                progress(new SimulationProgress(elapsed, sent, (sent - sentAtLastReport) / (elapsed - lastReport).TotalSeconds, publisher.Metrics.Snapshot()));
                sentAtLastReport = sent;
                lastReport = elapsed;
                nextReport = elapsed + TimeSpan.FromSeconds(1);
            }
            try
            {
                await Task.Delay(10, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        return sent;
    }
}
