using Keystone.Graph;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Aggregation;

/// <summary>A title's viewing statistics per window and all time, and its catalogue facts.</summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class VideoGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("stats", StorageNames.State)] IPersistentState<VideoStatsState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<VideoGrain> logger) : EntityGrainBase, IVideoGrain
{
    private const int MaxUnflushedEvents = 20_000;

    private VideoStatsAggregator _aggregator = null!;
    private StateCheckpointer<VideoStatsState> _checkpointer = null!;
    private readonly PartitionCoverage _coverage = new();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new VideoStatsAggregator(options.Value, state.State);
        _checkpointer = new StateCheckpointer<VideoStatsState>(state, "video", metrics, logger, SnapshotStore.PreparesAtSerialization(ServiceProvider));
        _graph = new GraphFacet(graph, graphServices, _activation);
        _graph.Activate(NodeType.Video, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        // Each state whatever happens to the other: an aggregation refused as stale must not cost the graph side.
        DeactivationWrite.Leave(reason, () => _coverage.WriteAsync(Write), _graph.Flush);

    public async ValueTask<VideoApplyResult> ApplyActivity(VideoActivityBatch batch)
    {
        var (applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        _coverage.Applied(batch.Partition, batch.Sequence);
        if (applied > 0) _checkpointer.Record(applied);
        if (_checkpointer.PendingEvents >= MaxUnflushedEvents) await _coverage.WriteAsync(Write);
        return new VideoApplyResult(_activation, [.. _aggregator.State.Genres], applied, duplicates);
    }

    private static (int, int) Apply(VideoStatsAggregator aggregator, VideoActivityBatch batch, DateTimeOffset now)
    {
        int applied = 0, duplicates = 0;
        // Catalogue facts first: a play in the same delivery then already knows the genres.
        foreach (var e in batch.CatalogEvents)
            if (aggregator.ApplyCatalog(e, now)) applied++;
            else duplicates++;
        foreach (var c in batch.Plays)
            if (aggregator.Apply(c, now)) applied++;
            else duplicates++;
        return (applied, duplicates);
    }

    // A title is fed by every partition; their barriers arrive together and one write answers them all.
    public async Task<Guid> Checkpoint(int partition, long sequence)
    {
        await _coverage.EnsureAsync(partition, sequence, Write);
        return _activation;
    }

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, _aggregator.ReleaseCheckpoint);

    public Task<VideoStatsView?> GetStats() =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Totals.Starts == 0 && _aggregator.State.Windows.Count == 0 && _aggregator.State.Title is null
            ? null
            : _aggregator.View(this.GetPrimaryKeyString()));
}
