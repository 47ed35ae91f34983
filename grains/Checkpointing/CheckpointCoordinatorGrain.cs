using Keystone.Archive;
using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Checkpointing;

public sealed class CheckpointCoordinatorState
{
    public long Started { get; set; }
    public long[] Covered { get; set; } = [];
    public DateTimeOffset? CompletedAt { get; set; }
}

/// <summary>
/// Drives checkpoints (see <see cref="ICheckpointCoordinatorGrain"/>); the bookkeeping is <see cref="CheckpointTracker"/>,
/// the durable record and the claim on each checkpoint's number <see cref="CheckpointLedger"/>. One storage write per
/// interval: the claim, with the covered positions. Reentrant: acknowledgements arrive while a round of barriers is
/// still being injected.
/// </summary>
[Reentrant, KeepAlive]
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class CheckpointCoordinatorGrain(
    [PersistentState("checkpoints", StorageNames.State)] IPersistentState<CheckpointCoordinatorState> state,
    IOptions<CheckpointOptions> options,
    IOptions<IngestOptions> ingest,
    SiloStopping stopping,
    TimeProvider time,
    ILogger<CheckpointCoordinatorGrain> logger) : Grain, ICheckpointCoordinatorGrain
{
    /// <summary>The stateful consumers of routed topics, named by their input topic: each acknowledges every barrier.</summary>
    public static readonly IReadOnlyList<string> Consumers = [Keystone.Aggregation.AggregationTopics.Input, Keystone.Graph.GraphTopics.Input, Keystone.Ads.AdTopics.Input, ArchiveTopics.Input];

    private CheckpointLedger _ledger = null!;
    // A checkpoint completed since the last round: the logs may drop more (and segments that were not in the lake yet
    // at the last seal may go now).
    private bool _dirty;
    private bool _running;
    private string? _layoutProblem;

    private CheckpointTracker Tracker => _ledger.Tracker;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var partitions = ingest.Value.Partitions;
        // Positions of another layout mean nothing here; the silo's start fails on it (see Start).
        _layoutProblem = PartitionLayout.Problem(state.State.Covered.Length, partitions);
        _ledger = new CheckpointLedger(state, partitions, Consumers);
        // Without the fronting log there is nothing to cover: the coordinator only answers status queries. Nor is
        // there anything to run on a layout this silo cannot use.
        if (!options.Value.Logging || _layoutProblem is not null) return Task.CompletedTask;
        var every = options.Value.Interval;
        this.RegisterGrainTimer(Round, new GrainTimerCreationOptions(TimeSpan.FromMilliseconds(200), every) { Interleave = true });
        return Task.CompletedTask;
    }

    public Task Start() => _layoutProblem is null ? Task.CompletedTask : throw new InvalidOperationException(_layoutProblem);

    public Task Ack(long checkpoint, int partition, string consumer)
    {
        if (Tracker.Acknowledged(checkpoint, partition, consumer)) Completed();
        return Task.CompletedTask;
    }

    public Task<long> Covered(int partition) => Task.FromResult(partition < Tracker.Partitions ? Tracker.Covered(partition) : 0);

    public Task<CheckpointStatus> GetStatus() =>
        Task.FromResult(new CheckpointStatus(Tracker.Started, Tracker.Completed, state.State.CompletedAt, Tracker.CoveredPositions(), Consumers));

    private void Completed()
    {
        _dirty = true;
        state.State.CompletedAt = time.GetUtcNow();
    }

    private async Task Round(CancellationToken cancellationToken)
    {
        // A stopping silo starts no checkpoint: its routers are deactivating, and the restart covers what this would.
        if (_running || stopping.IsStopping) return;
        _running = true;
        try
        {
            if (!stopping.TryEnter()) return;
            var sealing = _dirty;
            _dirty = false;
            CheckpointLedger.Claim? claim = null;
            try
            {
                claim = await _ledger.ClaimNext(cancellationToken);
            }
            finally
            {
                stopping.Exit();
                if (claim is null) _dirty |= sealing;
            }
            if (claim is null)
            {
                logger.LogWarning("Checkpoint coordinator: another activation wrote the checkpoint record since this one read it (the cluster's membership is changing); this one read it again and goes on after checkpoint {Checkpoint}", Tracker.Started);
                return;
            }

            // What completed is durable now: let the logs drop what it covers.
            if (sealing)
                for (var p = 0; p < claim.Covered.Length; p++)
                    await GrainFactory.GetGrain<IFrontingPartitionGrain>(p).SealBefore(claim.Covered[p] + 1);

            if (stopping.IsStopping) return;
            var n = claim.Checkpoint;
            await Task.WhenAll(Enumerable.Range(0, Tracker.Partitions).Select(async p =>
            {
                try
                {
                    var position = await GrainFactory.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p)).Barrier(n);
                    if (Tracker.Injected(n, p, position)) Completed();
                }
                catch (Exception e)
                {
                    Tracker.Abandon(n, p);
                    logger.LogWarning("Checkpoint {Checkpoint}: the router of partition {Partition} did not take its barrier: {Error}", n, p, e.Message);
                }
            }));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Checkpoint round failed: {Error}", e.Message);
        }
        finally
        {
            _running = false;
        }
    }
}
