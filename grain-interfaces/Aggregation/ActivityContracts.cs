using Keystone.Aggregation;
using Keystone.Events;

using Orleans.Concurrency;

namespace Keystone.Aggregation;

/// <summary>One user's events from one delivery of one partition, in arrival order.</summary>
/// <param name="Sequence">The operator's write-ahead-log position of the delivery; a grain that has applied it skips it.</param>
/// <param name="Watermark">The partition's watermark before this delivery.</param>
[GenerateSerializer, Immutable]
public sealed record ActivityBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] DateTimeOffset? Watermark,
    [property: Id(3)] KeystoneEvent[] Events);

/// <summary>
/// What a playback event contributes to its video and profile, as derived by the user grain (which alone knows the
/// play state needed to turn positions into watch time). Keyed by the source event, so applying it is idempotent.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PlayContribution(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] string EventType,
    [property: Id(2)] DateTimeOffset Timestamp,
    [property: Id(3)] string UserId,
    [property: Id(4)] string VideoId,
    [property: Id(5)] string? ProfileId,
    [property: Id(6)] long WatchMs,
    [property: Id(7)] bool Started,
    [property: Id(8)] bool Completed,
    [property: Id(9)] string? Quality,
    [property: Id(10)] string? Genre);

/// <summary>A user's activity in one window.</summary>
[GenerateSerializer, Immutable]
public sealed record UserWindowStats(
    [property: Id(0)] TimeWindow Window,
    [property: Id(1)] long Plays,
    [property: Id(2)] long Pauses,
    [property: Id(3)] long Resumes,
    [property: Id(4)] long Seeks,
    [property: Id(5)] long Stops,
    [property: Id(6)] long WatchMs,
    [property: Id(7)] int DistinctVideos,
    [property: Id(8)] IReadOnlyList<string> Devices,
    [property: Id(9)] DateTimeOffset? LastActivity,
    [property: Id(10)] bool Closed);

/// <summary>A window result leaving a user grain: on its first firing, or re-emitted after a late update.</summary>
[GenerateSerializer, Immutable]
public sealed record WindowResult(
    [property: Id(0)] string UserId,
    [property: Id(1)] UserWindowStats Stats,
    [property: Id(2)] bool LateUpdate);

[GenerateSerializer, Immutable]
public sealed record FireResult(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] IReadOnlyList<WindowResult> Fired,
    [property: Id(2)] DateTimeOffset? NextWindowEnd);

[GenerateSerializer, Immutable]
public sealed record UserApplyResult(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] IReadOnlyList<PlayContribution> Contributions,
    [property: Id(2)] IReadOnlyList<WindowResult> Reemitted,
    [property: Id(3)] int Applied,
    [property: Id(4)] int Duplicates,
    [property: Id(5)] DateTimeOffset? NextWindowEnd);

[GenerateSerializer, Immutable]
public sealed record SessionView(
    [property: Id(0)] DateTimeOffset Start,
    [property: Id(1)] DateTimeOffset LastActivity,
    [property: Id(2)] long Events,
    [property: Id(3)] long Plays,
    [property: Id(4)] long WatchMs,
    [property: Id(5)] IReadOnlyList<string> Devices);

[GenerateSerializer, Immutable]
public sealed record UserTotals(
    [property: Id(0)] long Events,
    [property: Id(1)] long Plays,
    [property: Id(2)] long Pauses,
    [property: Id(3)] long Resumes,
    [property: Id(4)] long Seeks,
    [property: Id(5)] long Stops,
    [property: Id(6)] long WatchMs,
    [property: Id(7)] long Sessions);

[GenerateSerializer, Immutable]
public sealed record UserActivityView(
    [property: Id(0)] string UserId,
    [property: Id(1)] IReadOnlyList<UserWindowStats> Windows,
    [property: Id(2)] SessionView? CurrentSession,
    [property: Id(3)] UserTotals Totals,
    [property: Id(4)] DateTimeOffset? LastActivity);

[GenerateSerializer, Immutable]
public sealed record QualityMix(
    [property: Id(0), System.Text.Json.Serialization.JsonPropertyName("4k")] long Uhd4K,
    [property: Id(1), System.Text.Json.Serialization.JsonPropertyName("hd")] long Hd,
    [property: Id(2), System.Text.Json.Serialization.JsonPropertyName("sd")] long Sd,
    [property: Id(3), System.Text.Json.Serialization.JsonPropertyName("other")] long Other);

[GenerateSerializer, Immutable]
public sealed record VideoWindowStats(
    [property: Id(0)] TimeWindow Window,
    [property: Id(1)] long Starts,
    [property: Id(2)] long Completions,
    [property: Id(3)] long UniqueViewers,
    [property: Id(4)] long WatchMs,
    [property: Id(5)] QualityMix Quality);

[GenerateSerializer, Immutable]
public sealed record VideoTotals(
    [property: Id(0)] long Starts,
    [property: Id(1)] long Completions,
    [property: Id(2)] long UniqueViewers,
    [property: Id(3)] long WatchMs,
    [property: Id(4)] QualityMix Quality);

[GenerateSerializer, Immutable]
public sealed record VideoStatsView(
    [property: Id(0)] string VideoId,
    [property: Id(1)] string? Title,
    [property: Id(2)] string? SeriesId,
    [property: Id(3)] IReadOnlyList<string> Genres,
    [property: Id(4)] IReadOnlyList<VideoWindowStats> Windows,
    [property: Id(5)] VideoTotals Totals);

[GenerateSerializer, Immutable]
public sealed record VideoActivityBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] IReadOnlyList<PlayContribution> Plays,
    [property: Id(3)] KeystoneEvent[] CatalogEvents);

[GenerateSerializer, Immutable]
public sealed record VideoApplyResult(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] IReadOnlyList<string> Genres,
    [property: Id(2)] int Applied,
    [property: Id(3)] int Duplicates);

[GenerateSerializer, Immutable]
public sealed record GenreAffinity([property: Id(0)] string Genre, [property: Id(1)] double Score);

[GenerateSerializer, Immutable]
public sealed record ProfileWindowStats(
    [property: Id(0)] TimeWindow Window,
    [property: Id(1)] long Plays,
    [property: Id(2)] long WatchMs);

[GenerateSerializer, Immutable]
public sealed record ProfileView(
    [property: Id(0)] string ProfileId,
    [property: Id(1)] string? UserId,
    [property: Id(2)] long Plays,
    [property: Id(3)] long WatchMs,
    [property: Id(4)] DateTimeOffset? LastActivity,
    [property: Id(5)] IReadOnlyList<ProfileWindowStats> Windows,
    [property: Id(6)] IReadOnlyList<GenreAffinity> TopGenres);

/// <param name="Genres">Catalogue genres of the titles involved, for contributions whose event named none.</param>
[GenerateSerializer, Immutable]
public sealed record ProfileActivityBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] IReadOnlyList<PlayContribution> Plays,
    [property: Id(3)] IReadOnlyDictionary<string, IReadOnlyList<string>> Genres);

[GenerateSerializer, Immutable]
public sealed record ApplyAck(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] int Applied,
    [property: Id(2)] int Duplicates);

/// <summary>A member account: per-window activity, the current session and totals (and, with the graph, its edges).</summary>
public interface IUserGrain : Graph.IGraphNodeGrain
{
    ValueTask<UserApplyResult> ApplyActivity(ActivityBatch batch);

    /// <summary>Fires the windows the watermark has passed; returns their results and when to call again.</summary>
    ValueTask<FireResult> AdvanceWatermark(int partition, DateTimeOffset watermark);

    /// <summary>Writes the state (with its de-duplication memory and applied positions) if it changed.</summary>
    /// <remarks>Interleaved, like Flink's asynchronous snapshots: the state is serialised at once and deliveries go on
    /// being applied while the blob write is in flight.</remarks>
    [AlwaysInterleave]
    Task<Guid> Checkpoint();

    /// <summary>Windows overlapping [from, to), the current session and totals; null when the user has never been seen.</summary>
    Task<UserActivityView?> GetActivity(DateTimeOffset? from, DateTimeOffset? to);
}

/// <summary>A title: per-window and all-time viewing statistics, and its catalogue facts.</summary>
public interface IVideoGrain : Graph.IGraphNodeGrain
{
    ValueTask<VideoApplyResult> ApplyActivity(VideoActivityBatch batch);

    /// <summary>Makes durable what was applied from <paramref name="partition"/> up to log position <paramref name="sequence"/>.</summary>
    [AlwaysInterleave]
    Task<Guid> Checkpoint(int partition, long sequence);
    Task<VideoStatsView?> GetStats();
}

/// <summary>A profile: its activity and its genre affinities (decayed watch time by genre).</summary>
public interface IProfileGrain : Graph.IGraphNodeGrain
{
    ValueTask<ApplyAck> ApplyActivity(ProfileActivityBatch batch);

    [AlwaysInterleave]
    Task<Guid> Checkpoint();
    Task<ProfileView?> GetProfile();
}

[GenerateSerializer, Immutable]
public sealed record OperatorStats(
    [property: Id(0)] int Partition,
    [property: Id(1)] DateTimeOffset? Watermark,
    [property: Id(2)] DateTimeOffset? MaxEventTime,
    [property: Id(3)] long Sequence,
    [property: Id(4)] long CheckpointedSequence,
    [property: Id(5)] long Events,
    [property: Id(6)] long LateWithinLateness,
    [property: Id(7)] long TooLate,
    [property: Id(8)] long Duplicates,
    [property: Id(9)] long WindowsFired,
    [property: Id(10)] long Checkpoints,
    [property: Id(11)] DateTimeOffset? LastCheckpointAt,
    [property: Id(12)] int PendingTimers,
    [property: Id(13)] long Replayed,
    [property: Id(14)] LatencySnapshot ApplyLag,
    [property: Id(15)] long ClockSkewed = 0);

/// <summary>The windowing operator of one partition of the activity topic (Flink's keyBy + window, on grains).</summary>
public interface IActivityOperatorGrain : Keystone.Checkpointing.IEntityOperatorGrain
{
    // Interleaved: an operator waiting on a long delivery or a checkpoint must still answer the operations endpoint.
    [AlwaysInterleave]
    Task<OperatorStats> GetStats();

    /// <summary>Runs a checkpoint now (tests and graceful shutdown).</summary>
    Task CheckpointNow();

    /// <summary>Forgets counters and the apply-lag histogram (benchmarks start from zero).</summary>
    [AlwaysInterleave]
    Task ResetStats();
}

/// <summary>Combines every partition's watermark (minimum over the non-idle ones).</summary>
public interface IWatermarkCoordinatorGrain : IGrainWithIntegerKey
{
    Task<DateTimeOffset?> Report(int partition, DateTimeOffset? maxEventTime);
    Task<DateTimeOffset?> GetWatermark();
}
