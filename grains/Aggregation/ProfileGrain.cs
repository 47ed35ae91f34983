using Keystone.Graph;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Aggregation;

/// <summary>A profile: plays and watch time, per window and in total, and genre affinity.</summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class ProfileGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("activity", StorageNames.State)] IPersistentState<ProfileState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<ProfileGrain> logger) : EntityGrainBase, IProfileGrain
{
    private const int MaxUnflushedEvents = 5_000;

    private ProfileAggregator _aggregator = null!;
    private StateCheckpointer<ProfileState> _checkpointer = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new ProfileAggregator(options.Value, state.State);
        _checkpointer = new StateCheckpointer<ProfileState>(state, "profile", metrics, logger, SnapshotStore.PreparesAtSerialization(ServiceProvider));
        // PREFERS is weighted by the profile's genre affinity, which its aggregation keeps.
        _graph = new GraphFacet(graph, graphServices, _activation, e => e.Label == EdgeLabel.Prefers ? _aggregator.Affinity(e.Target) : null);
        _graph.Activate(NodeType.Profile, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        // Each state whatever happens to the other: an aggregation refused as stale must not cost the graph side.
        DeactivationWrite.Leave(reason, Checkpoint, _graph.Flush);

    public async ValueTask<ApplyAck> ApplyActivity(ProfileActivityBatch batch)
    {
        var (applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        if (applied > 0) _checkpointer.Record(applied);
        if (_checkpointer.PendingEvents >= MaxUnflushedEvents) await Checkpoint();
        return new ApplyAck(_activation, applied, duplicates);
    }

    private static (int, int) Apply(ProfileAggregator aggregator, ProfileActivityBatch batch, DateTimeOffset now)
    {
        int applied = 0, duplicates = 0;
        foreach (var c in batch.Plays)
        {
            IReadOnlyList<string> genres = c.Genre is { } g ? [g] : batch.Genres.GetValueOrDefault(c.VideoId) ?? [];
            if (aggregator.Apply(c, genres, now)) applied++;
            else duplicates++;
        }
        return (applied, duplicates);
    }

    public async Task<Guid> Checkpoint()
    {
        await Write();
        return _activation;
    }

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, _aggregator.ReleaseCheckpoint);

    public Task<ProfileView?> GetProfile() =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Plays == 0 && _aggregator.State.WatchMs == 0 ? null : _aggregator.View(this.GetPrimaryKeyString()));
}
