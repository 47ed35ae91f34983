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
/// Drives checkpoints (see <see cref="ICheckpointCoordinatorGrain"/>); the bookkeeping is <see cref="CheckpointTracker"/>.
/// One storage write per interval: the covered positions, once they moved. Reentrant: acknowledgements arrive while a
/// round of barriers is still being injected.
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

    private CheckpointTracker _tracker = null!;
    private bool _dirty;
    private bool _running;
    private string? _layoutProblem;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var partitions = ingest.Value.Partitions;
        var s = state.State;
        // Positions of another layout mean nothing here; the silo's start fails on it (see Start).
        _layoutProblem = PartitionLayout.Problem(s.Covered.Length, partitions);
        _tracker = new CheckpointTracker(partitions, Consumers, s.Started, s.Covered.Length == partitions ? s.Covered : null);
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
        if (_tracker.Acknowledged(checkpoint, partition, consumer)) Completed(partition);
        return Task.CompletedTask;
    }

    public Task<long> Covered(int partition) => Task.FromResult(partition < _tracker.Partitions ? _tracker.Covered(partition) : 0);

    public Task<CheckpointStatus> GetStatus() =>
        Task.FromResult(new CheckpointStatus(_tracker.Started, _tracker.Completed, state.State.CompletedAt, _tracker.CoveredPositions(), Consumers));

    private void Completed(int partition)
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
            // Persist what completed since the last round, then let the logs drop what it covers.
            if (_dirty)
            {
                if (!stopping.TryEnter()) return;
                try
                {
                    state.State.Covered = _tracker.CoveredPositions();
                    state.State.Started = _tracker.Started;
                    await state.WriteStateAsync(cancellationToken);
                }
                finally
                {
                    stopping.Exit();
                }
                _dirty = false;
                for (var p = 0; p < _tracker.Partitions; p++)
                    await GrainFactory.GetGrain<IFrontingPartitionGrain>(p).SealBefore(_tracker.Covered(p) + 1);
            }

            if (stopping.IsStopping) return;
            var n = _tracker.Begin();
            await Task.WhenAll(Enumerable.Range(0, _tracker.Partitions).Select(async p =>
            {
                try
                {
                    var position = await GrainFactory.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p)).Barrier(n);
                    if (_tracker.Injected(n, p, position)) Completed(p);
                }
                catch (Exception e)
                {
                    _tracker.Abandon(n, p);
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
