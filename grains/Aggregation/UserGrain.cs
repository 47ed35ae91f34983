using Keystone.Graph;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Aggregation;

/// <summary>
/// A member: windowed activity, current session and totals (and, with the real-time graph, its edges). Events come
/// from the window operator of the user's partition, one call per delivery; state is written at the operator's
/// checkpoints, when many events are pending, and on deactivation.
/// </summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class UserGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("activity", StorageNames.State)] IPersistentState<UserActivityState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<UserGrain> logger) : EntityGrainBase, IUserGrain
{
    // A size bound for group commit: a very busy user writes before the next barrier.
    private const int MaxUnflushedEvents = 5_000;

    private UserActivityAggregator _aggregator = null!;
    private StateCheckpointer<UserActivityState> _checkpointer = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new UserActivityAggregator(this.GetPrimaryKeyString(), options.Value, state.State);
        _checkpointer = new StateCheckpointer<UserActivityState>(state, "user", metrics, logger, SnapshotStore.PreparesAtSerialization(ServiceProvider));
        _graph = new GraphFacet(graph, graphServices, _activation);
        _graph.Activate(NodeType.User, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        // Each state whatever happens to the other: an aggregation refused as stale must not cost the graph side.
        DeactivationWrite.Leave(reason, Checkpoint, _graph.Flush);

    public async ValueTask<UserApplyResult> ApplyActivity(ActivityBatch batch)
    {
        var (contributions, reemitted, applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        if (applied > 0) _checkpointer.Record(applied);
        if (_checkpointer.PendingEvents >= MaxUnflushedEvents) await Checkpoint();
        return new UserApplyResult(_activation, contributions, reemitted, applied, duplicates, _aggregator.NextWindowEnd);
    }

    private static (IReadOnlyList<PlayContribution>, IReadOnlyList<WindowResult>, int, int) Apply(UserActivityAggregator aggregator, ActivityBatch batch, DateTimeOffset now)
    {
        // Most calls carry one or two events and reopen no window: the lists are made only when something goes in.
        List<PlayContribution>? contributions = null;
        List<DateTimeOffset>? late = null;
        int applied = 0, duplicates = 0;
        foreach (var e in batch.Events)
        {
            var windowWasFired = aggregator.IsFired(e.Timestamp);
            if (aggregator.Apply(e, now, out var contribution))
            {
                applied++;
                if (windowWasFired && !(late ??= []).Contains(aggregator.WindowStart(e.Timestamp))) late.Add(aggregator.WindowStart(e.Timestamp));
            }
            else
            {
                duplicates++;
            }
            if (contribution is not null) (contributions ??= new List<PlayContribution>(batch.Events.Length)).Add(contribution);
        }
        IReadOnlyList<WindowResult> reemitted = late is null ? [] : late.ConvertAll(aggregator.Reemit);
        return (contributions is null ? [] : contributions, reemitted, applied, duplicates);
    }

    public ValueTask<FireResult> AdvanceWatermark(int partition, DateTimeOffset watermark)
    {
        var fired = _aggregator.Fire(watermark);
        if (fired.Count > 0) _checkpointer.Record(0);
        return ValueTask.FromResult(new FireResult(_activation, fired, _aggregator.NextWindowEnd));
    }

    public async Task<Guid> Checkpoint()
    {
        await Write();
        return _activation;
    }

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, _aggregator.ReleaseCheckpoint);

    public Task<UserActivityView?> GetActivity(DateTimeOffset? from, DateTimeOffset? to) =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Totals.Events == 0 ? null : _aggregator.View(from, to));
}
