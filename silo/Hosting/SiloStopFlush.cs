using Keystone.Archive;
using Keystone.Checkpointing;

namespace Keystone.Silo.Hosting;

/// <summary>
/// What a stopping silo writes before Orleans deactivates its grains. Orleans deactivates every grain of the silo at
/// once, the snapshot buckets that store all state among them, so a write that waits for its grain's deactivation can
/// find its bucket gone (an error in the log of a Ctrl+C of the quick start). Here, while the buckets still answer:
/// <list type="bullet">
/// <item>the archive writers write what waits for the next barrier, their manifests and their state
/// (<see cref="IArchiveWriterGrain.Flush"/>): otherwise events were archived without the record that they were, and
/// the replay after the restart archived them again;</item>
/// <item>the fronting log writers close their open segments and write them to the lake, where the lake is the sealed
/// log (<see cref="IFrontingPartitionGrain.FlushToLake"/>);</item>
/// <item>when no other silo stays (the buckets then have nowhere to go), entity checkpoints under way start no more
/// writes, and the ones in flight finish (<see cref="SiloStopping"/>): a checkpoint cut short covers nothing, and the
/// restart replays it from the fronting log. When other silos stay, checkpoints go on as before: the buckets answer
/// from there, and the operators' replay when a silo leaves is tested in that shape.</item>
/// </list>
/// </summary>
internal sealed class SiloStopFlush(
    LocalArchiveWriters writers,
    LocalFrontingPartitions partitions,
    SiloStopping stopping,
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    ILogger<SiloStopFlush> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    // Stops before the stage that deactivates grains and before the silo's own Active stage (gateway, grain services).
    private const int Stage = ServiceLifecycleStage.Active + 1;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SiloStopFlush), Stage, _ => Task.CompletedTask, Stop);

    private Task Stop(CancellationToken cancellationToken) =>
        Task.WhenAll(DrainCheckpoints(cancellationToken), FlushArchive(cancellationToken), SealLog(cancellationToken));

    // Where the lake is the sealed log: the open segments are closed and written, so the lake is whole after a stop.
    // What cannot be written stays in the log, and the restart writes it.
    private Task SealLog(CancellationToken cancellationToken) =>
        FlushAll(partitions.Active, p => p.FlushToLake(), "Lake: {Count} fronting log partitions sealed before the silo stops",
            "Lake: sealing {Count} fronting log partitions before the silo stops failed; the log keeps their segments and the restart seals them", cancellationToken);

    private async Task DrainCheckpoints(CancellationToken cancellationToken)
    {
        if (membership.OthersActive(silo.SiloAddress)) return;
        try
        {
            await stopping.DrainAsync().WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            logger.LogWarning("Entity state writes were still in flight when the silo's stop timed out; the fronting log replays what they held");
        }
    }

    // What the archive writers could not write is not acknowledged: the fronting log replays it after the restart.
    private Task FlushArchive(CancellationToken cancellationToken) =>
        FlushAll(writers.Active, w => w.Flush(), "Archive: {Count} partition writers flushed before the silo stops",
            "Archive: flushing {Count} partition writers before the silo stops failed; what they held is replayed after the restart", cancellationToken);

    private async Task FlushAll<TGrain>(IReadOnlyCollection<TGrain> active, Func<TGrain, Task> flush, string flushed, string failed, CancellationToken cancellationToken)
    {
        if (active.Count == 0) return;
        try
        {
            await Task.WhenAll(active.Select(flush)).WaitAsync(cancellationToken);
            logger.LogInformation(flushed, active.Count);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, failed, active.Count);
        }
    }
}
