using Keystone.Activity;
using Keystone.Graph;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Keystone.Aggregation;

/// <summary>What a user grain has to redo after a write conflict: an applied batch, or a watermark it fired windows for.</summary>
internal readonly record struct UserInput(ActivityBatch? Batch, DateTimeOffset? Watermark);

/// <summary>
/// A member: windowed activity, current session and totals (and, with the real-time graph, its edges). Events come
/// from the window operator of the user's partition, one call per delivery; state is written at the operator's
/// checkpoints, when many events are pending, and on deactivation.
/// </summary>
public sealed class UserGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("activity", StorageNames.State)] IPersistentState<UserActivityState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<UserGrain> logger) : GraphNodeGrainBase, IUserGrain
{
    // A size bound for group commit: a very busy user writes before the next barrier.
    private const int MaxUnflushedEvents = 5_000;

    private readonly Guid _activation = Guid.NewGuid();
    private GraphFacet _graph = null!;

    private protected override GraphFacet Graph => _graph;
    private UserActivityAggregator _aggregator = null!;
    private StateCheckpointer<UserActivityState, UserInput> _checkpointer = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new UserActivityAggregator(this.GetPrimaryKeyString(), options.Value, state.State);
        _checkpointer = new StateCheckpointer<UserActivityState, UserInput>(state, "user", metrics, logger);
        _graph = new GraphFacet(graph, graphServices, _activation);
        _graph.Activate(NodeType.User, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await Checkpoint();
        await _graph.Flush();
    }

    public async Task<UserApplyResult> ApplyActivity(ActivityBatch batch)
    {
        var (contributions, reemitted, applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        if (applied > 0) _checkpointer.Record(new UserInput(batch, null), applied);
        if (_checkpointer.PendingEvents >= MaxUnflushedEvents) await Checkpoint();
        return new UserApplyResult(_activation, contributions, reemitted, applied, duplicates, _aggregator.NextWindowEnd);
    }

    private static (List<PlayContribution>, List<WindowResult>, int, int) Apply(UserActivityAggregator aggregator, ActivityBatch batch, DateTimeOffset now)
    {
        var contributions = new List<PlayContribution>();
        var late = new List<DateTimeOffset>();
        int applied = 0, duplicates = 0;
        foreach (var e in batch.Events)
        {
            var windowWasFired = aggregator.IsFired(e.Timestamp);
            if (aggregator.Apply(e, now, out var contribution))
            {
                applied++;
                if (windowWasFired) late.Add(aggregator.WindowStart(e.Timestamp));
            }
            else
            {
                duplicates++;
            }
            if (contribution is not null) contributions.Add(contribution);
        }
        var reemitted = late.Distinct().Select(aggregator.Reemit).ToList();
        return (contributions, reemitted, applied, duplicates);
    }

    public Task<FireResult> AdvanceWatermark(int partition, DateTimeOffset watermark)
    {
        var fired = _aggregator.Fire(watermark);
        if (fired.Count > 0) _checkpointer.Record(new UserInput(null, watermark), 0);
        return Task.FromResult(new FireResult(_activation, fired, _aggregator.NextWindowEnd));
    }

    public async Task<Guid> Checkpoint()
    {
        await Write();
        return _activation;
    }

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, fresh =>
    {
        _aggregator = new UserActivityAggregator(this.GetPrimaryKeyString(), options.Value, fresh);
        var now = time.GetUtcNow();
        return input =>
        {
            if (input.Batch is { } b) Apply(_aggregator, b, now);
            if (input.Watermark is { } wm) _aggregator.Fire(wm);
        };
    });

    public Task<UserActivityView?> GetActivity(DateTimeOffset? from, DateTimeOffset? to) =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Totals.Events == 0 ? null : _aggregator.View(from, to));
}

/// <summary>A title's viewing statistics per window and all time, and its catalogue facts.</summary>
public sealed class VideoGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("stats", StorageNames.State)] IPersistentState<VideoStatsState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<VideoGrain> logger) : GraphNodeGrainBase, IVideoGrain
{
    private const int MaxUnflushedEvents = 20_000;

    private readonly Guid _activation = Guid.NewGuid();
    private GraphFacet _graph = null!;

    private protected override GraphFacet Graph => _graph;
    private VideoStatsAggregator _aggregator = null!;
    private StateCheckpointer<VideoStatsState, VideoActivityBatch> _checkpointer = null!;
    private readonly PartitionCoverage _coverage = new();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new VideoStatsAggregator(options.Value, state.State);
        _checkpointer = new StateCheckpointer<VideoStatsState, VideoActivityBatch>(state, "video", metrics, logger);
        _graph = new GraphFacet(graph, graphServices, _activation);
        _graph.Activate(NodeType.Video, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await _coverage.WriteAsync(Write);
        await _graph.Flush();
    }

    public async Task<VideoApplyResult> ApplyActivity(VideoActivityBatch batch)
    {
        var (applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        _coverage.Applied(batch.Partition, batch.Sequence);
        if (applied > 0) _checkpointer.Record(batch, applied);
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

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, fresh =>
    {
        _aggregator = new VideoStatsAggregator(options.Value, fresh);
        var now = time.GetUtcNow();
        return b => Apply(_aggregator, b, now);
    });

    public Task<VideoStatsView?> GetStats() =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Totals.Starts == 0 && _aggregator.State.Windows.Count == 0 && _aggregator.State.Title is null
            ? null
            : _aggregator.View(this.GetPrimaryKeyString()));
}

/// <summary>A profile: plays and watch time, per window and in total, and genre affinity.</summary>
public sealed class ProfileGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices graphServices,
    [PersistentState("activity", StorageNames.State)] IPersistentState<ProfileState> state,
    IOptions<AggregationOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<ProfileGrain> logger) : GraphNodeGrainBase, IProfileGrain
{
    private const int MaxUnflushedEvents = 5_000;

    private readonly Guid _activation = Guid.NewGuid();
    private GraphFacet _graph = null!;

    private protected override GraphFacet Graph => _graph;
    private ProfileAggregator _aggregator = null!;
    private StateCheckpointer<ProfileState, ProfileActivityBatch> _checkpointer = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _aggregator = new ProfileAggregator(options.Value, state.State);
        _checkpointer = new StateCheckpointer<ProfileState, ProfileActivityBatch>(state, "profile", metrics, logger);
        // PREFERS is weighted by the profile's genre affinity, which its aggregation keeps.
        _graph = new GraphFacet(graph, graphServices, _activation, e => e.Label == EdgeLabel.Prefers ? _aggregator.Affinity(e.Target) : null);
        _graph.Activate(NodeType.Profile, this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await Checkpoint();
        await _graph.Flush();
    }

    public async Task<ApplyAck> ApplyActivity(ProfileActivityBatch batch)
    {
        var (applied, duplicates) = Apply(_aggregator, batch, time.GetUtcNow());
        if (applied > 0) _checkpointer.Record(batch, applied);
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

    private Task Write() => _checkpointer.WriteAsync(_aggregator.PrepareCheckpoint, fresh =>
    {
        _aggregator = new ProfileAggregator(options.Value, fresh);
        var now = time.GetUtcNow();
        return b => Apply(_aggregator, b, now);
    });

    public Task<ProfileView?> GetProfile() =>
        Task.FromResult(!state.RecordExists && _aggregator.State.Plays == 0 && _aggregator.State.WatchMs == 0 ? null : _aggregator.View(this.GetPrimaryKeyString()));
}
