using Keystone.Storage;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Logs a storage request that has waited longer than <see cref="StorageOptions.StallWarningAfter"/> for its answer,
/// once, with what it was and where; and logs when it is no longer waiting. A stalled request otherwise surfaces as a
/// timeout of the grain call or checkpoint that waited on it, naming neither.
/// </summary>
internal sealed class StorageStallWatch(StorageRequests requests, IOptions<StorageOptions> options, TimeProvider time, ILogger<StorageStallWatch> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var after = options.Value.StallWarningAfter;
        var stalls = new StorageStalls(after);
        // A quarter of the threshold: a stall is reported at most that late. The look is a handful of entries.
        using var timer = new PeriodicTimer(after / 4, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var inFlight = requests.InFlight();
                var (stalled, cleared) = stalls.Look(inFlight);
                foreach (var r in stalled)
                    logger.LogWarning("Storage request {Operation} {Target} has waited {Seconds:0.0} s for its answer ({Waiting} requests waiting)",
                        r.Operation, r.Target, r.Waiting.TotalSeconds, inFlight.Count);
                foreach (var r in cleared)
                    logger.LogWarning("Storage request {Operation} {Target}, reported stalled, is no longer waiting", r.Operation, r.Target);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
