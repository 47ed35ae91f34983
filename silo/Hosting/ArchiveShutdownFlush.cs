using Keystone.Archive;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Before a stopping silo deactivates its grains, its archive writers write what waits for the next barrier, their
/// manifests and their state (<see cref="IArchiveWriterGrain.Flush"/>). Orleans deactivates every grain of the silo at
/// once; a writer that waited for its own deactivation could find the snapshot bucket that stores its state already
/// gone (an error in the log of every Ctrl+C of the quick start, and events archived without the record that they
/// were, so the replay after the restart archived them again).
/// </summary>
internal sealed class ArchiveShutdownFlush(LocalArchiveWriters writers, ILogger<ArchiveShutdownFlush> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    // Stops before the stage that deactivates grains and before the silo's own Active stage (gateway, grain services).
    private const int Stage = ServiceLifecycleStage.Active + 1;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(ArchiveShutdownFlush), Stage, _ => Task.CompletedTask, Stop);

    private async Task Stop(CancellationToken cancellationToken)
    {
        var active = writers.Active;
        if (active.Count == 0) return;
        try
        {
            await Task.WhenAll(active.Select(w => w.Flush())).WaitAsync(cancellationToken);
            logger.LogInformation("Archive: {Count} partition writers flushed before the silo stops", active.Count);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // What they could not write is not acknowledged: the fronting log replays it after the restart.
            logger.LogWarning(e, "Archive: flushing {Count} partition writers before the silo stops failed; what they held is replayed after the restart", active.Count);
        }
    }
}
