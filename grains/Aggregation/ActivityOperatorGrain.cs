using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Aggregation;

/// <summary>Checkpointed operator state: the log position (see <see cref="LoggedOperatorState"/>), the watermark, pending timers.</summary>
public sealed class ActivityOperatorState : LoggedOperatorState
{
    /// <summary>The highest event time seen, each event counted no later than it arrived (<see cref="WatermarkTracker.Progress"/>).</summary>
    public DateTimeOffset? MaxEventTime { get; set; }

    /// <summary>User → end of its earliest window that has not fired (the operator's event-time timers).</summary>
    public Dictionary<string, DateTimeOffset> Timers { get; set; } = [];
}

public static class AggregationTopics
{
    /// <summary>The operators' input; the shipped rules route playback and catalogue events here.</summary>
    public const string Input = "activity-aggregation";
}

/// <summary>
/// The window operator of one partition of the activity topic: Flink's keyBy(user) + tumbling event-time windows,
/// with User, Video and Profile grains holding the keyed state.
///
/// Exactly-once effect: every delivery is first appended to a write-ahead log in blob storage (one write for the
/// whole delivery) and only then applied and acknowledged. Entity grains apply in memory, idempotently by event id,
/// and write their state (with their de-duplication memory) at this operator's checkpoints — every
/// <see cref="AggregationOptions.CheckpointInterval"/>, many events per write — after which the log is truncated. After
/// a crash the operator replays the log from its last checkpoint; replayed events that a grain had already made
/// durable are recognised by id, the rest are applied again. If a grain loses its memory while this operator lives
/// (its silo died), its changed activation id tells the operator to replay the current log segment.
/// </summary>
[ImplicitStreamSubscription(AggregationTopics.Input)]
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class ActivityOperatorGrain(
    [PersistentState("operator", StorageNames.State)] IPersistentState<ActivityOperatorState> state,
    IOperatorLogFactory logs,
    IOptions<AggregationOptions> options,
    IOptions<IngestOptions> ingestOptions,
    CheckpointMetrics checkpointMetrics,
    PipelineMetrics pipelineMetrics,
    TimeProvider time,
    ILogger<ActivityOperatorGrain> logger)
    : LoggedOperatorGrain<ActivityOperatorState>(state, logs, ingestOptions.Value, checkpointMetrics, pipelineMetrics, time, logger), IActivityOperatorGrain
{
    private readonly AggregationOptions _options = options.Value;
    private readonly ClockSkew _clockSkew = new(ingestOptions.Value.MaxClockSkew);
    private readonly PipelineMetrics _metrics = pipelineMetrics;
    private TumblingWindows _windows = null!;
    private DateTimeOffset _lastReport;
    private long _events, _late, _tooLate, _fired, _clockSkewed;
    private readonly LatencyHistogram _applyLag = new();

    protected override string InputTopic => AggregationTopics.Input;
    protected override string LogName => "activity";
    protected override TimeSpan CheckpointInterval => _options.CheckpointInterval;
    protected override int CheckpointConcurrency => _options.CheckpointConcurrency;
    protected override int DispatchConcurrency => _options.DispatchConcurrency;

    private DateTimeOffset? Watermark => S.MaxEventTime - _options.OutOfOrderness;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _windows = _options.Windows();
        return base.OnActivateAsync(cancellationToken);
    }

    protected override async Task Process(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt)
    {
        var now = Time.GetUtcNow();
        // A clock far ahead counts at arrival, and no event moves the watermark past its arrival: one producer's
        // wrong clock must not make every other user of the partition late.
        events = _clockSkew.Correct(events, arrivedAt, out var skewed);
        _clockSkewed += skewed;
        if (skewed > 0) _metrics.ClockSkewed(LogName, skewed);
        var watermark = Watermark;
        // A user's plays in an array grown one at a time: most users have one play per delivery, and the array goes into
        // the user's batch as it is.
        var byUser = new Dictionary<string, KeystoneEvent[]>(StringComparer.Ordinal);
        var catalog = new Dictionary<string, List<KeystoneEvent>>(StringComparer.Ordinal);
        var tooLate = new List<KeystoneEvent>();
        DateTimeOffset? maxEventTime = null;

        foreach (var e in events)
        {
            _events++;
            var progress = WatermarkTracker.Progress(e.Timestamp, arrivedAt);
            if (maxEventTime is not { } m || progress > m) maxEventTime = progress;
            if (e.EventType.StartsWith("content.", StringComparison.Ordinal))
            {
                if (e.Payload.GetString("video_id") is { } video) Add(catalog, video, e);
                continue;
            }
            if (!e.EventType.StartsWith("video.play.", StringComparison.Ordinal) || e.UserId is not { } user) continue;
            switch (LatenessPolicy.Classify(_windows.Assign(e.Timestamp), watermark, _options.AllowedLateness))
            {
                case Lateness.TooLate:
                    _tooLate++;
                    tooLate.Add(e);
                    continue;
                case Lateness.LateWithinLateness:
                    _late++;
                    break;
            }
            Append(byUser, user, e);
        }

        var results = new List<WindowResult>();

        // Users first: they turn positions into watch time for their videos and profiles.
        var userResults = await ForEach(byUser, (user, list) => GrainRefs.Get<IUserGrain>(GrainFactory, user).ApplyActivity(new ActivityBatch(Partition, sequence, watermark, list)));
        // Grain-visible: the users have applied these events (in memory, queryable).
        var visibleAt = Time.GetUtcNow().UtcTicks;
        foreach (var list in byUser.Values)
            foreach (var e in list) _applyLag.Record((visibleAt - e.Timestamp.UtcTicks) / TimeSpan.TicksPerMicrosecond);

        // Sized exactly, as is the grouping by profile below (most plays of a delivery are of distinct profiles): grown
        // by doubling, their arrays were about 1.5 % of the bytes the pipeline allocated at saturation.
        var contributionCount = 0;
        foreach (var (_, r) in userResults) contributionCount += r.Contributions.Count;
        var contributions = new List<PlayContribution>(contributionCount);
        foreach (var (user, r) in userResults)
        {
            Touch('u', user, r.ActivationId);
            contributions.AddRange(r.Contributions);
            results.AddRange(r.Reemitted);
            SetTimer(user, r.NextWindowEnd);
        }

        // Grouped with plain loops (first occurrence first, as GroupBy did): this runs once per delivery per partition.
        var playsByVideo = new Dictionary<string, List<PlayContribution>>(StringComparer.Ordinal);
        var byProfile = new Dictionary<string, List<PlayContribution>>(contributions.Count, StringComparer.Ordinal);
        foreach (var c in contributions)
        {
            Add(playsByVideo, c.VideoId, c);
            if (c.ProfileId is { } profileId) Add(byProfile, profileId, c);
        }
        var videos = new Dictionary<string, int>(playsByVideo.Count + catalog.Count, StringComparer.Ordinal);
        foreach (var video in playsByVideo.Keys) videos[video] = 0;
        foreach (var video in catalog.Keys) videos.TryAdd(video, 0);
        var genres = new Dictionary<string, IReadOnlyList<string>>(videos.Count, StringComparer.Ordinal);
        var videoResults = await ForEach(videos, (video, _) => GrainRefs.Get<IVideoGrain>(GrainFactory, video).ApplyActivity(
            new VideoActivityBatch(Partition, sequence, playsByVideo.GetValueOrDefault(video) ?? [], catalog.TryGetValue(video, out var added) ? [.. added] : [])));
        foreach (var (video, r) in videoResults)
        {
            Touch('v', video, r.ActivationId);
            genres[video] = r.Genres;
        }

        var profileResults = await ForEach(byProfile, (profile, plays) => GrainRefs.Get<IProfileGrain>(GrainFactory, profile).ApplyActivity(
            new ProfileActivityBatch(Partition, sequence, plays, GenresOf(plays, genres))));
        foreach (var (profile, r) in profileResults)
        {
            Touch('p', profile, r.ActivationId);
        }

        // Advance the watermark, then fire the windows it has passed.
        if (maxEventTime is { } max && (S.MaxEventTime is not { } current || max > current)) S.MaxEventTime = max;
        await ReportWatermark(now);
        if (Watermark is { } wm)
        {
            var due = S.Timers.Where(t => t.Value <= wm).Select(t => t.Key).ToList();
            var fired = await ForEach(due.ToDictionary(u => u, _ => 0), (user, _) => GrainRefs.Get<IUserGrain>(GrainFactory, user).AdvanceWatermark(Partition, wm));
            foreach (var (user, f) in fired)
            {
                Touch('u', user, f.ActivationId);
                results.AddRange(f.Fired);
                _fired += f.Fired.Count;
                SetTimer(user, f.NextWindowEnd);
            }
        }

        // Stamped as they are emitted, after the rounds, as the graph's changes are: their topics' lag starts there.
        await Emit(results, tooLate, Time.GetUtcNow());
    }

    private static void Append(Dictionary<string, KeystoneEvent[]> map, string key, KeystoneEvent item)
    {
        ref var events = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(map, key, out _);
        if (events is null)
        {
            events = [item];
            return;
        }
        Array.Resize(ref events, events.Length + 1);
        events[^1] = item;
    }

    private static void Add<T>(Dictionary<string, List<T>> map, string key, T item)
    {
        if (!map.TryGetValue(key, out var list)) map[key] = list = [];
        list.Add(item);
    }

    // The genres of the videos a profile played, where known.
    private static Dictionary<string, IReadOnlyList<string>> GenresOf(List<PlayContribution> plays, Dictionary<string, IReadOnlyList<string>> genres)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var play in plays)
            if (genres.TryGetValue(play.VideoId, out var known)) result.TryAdd(play.VideoId, known);
        return result;
    }

    private void SetTimer(string user, DateTimeOffset? end)
    {
        if (end is { } e) S.Timers[user] = e;
        else S.Timers.Remove(user);
    }

    private async Task ReportWatermark(DateTimeOffset now)
    {
        if (now - _lastReport < TimeSpan.FromSeconds(1)) return;
        _lastReport = now;
        await GrainFactory.GetGrain<IWatermarkCoordinatorGrain>(0).Report(Partition, S.MaxEventTime);
    }

    private async Task Emit(List<WindowResult> results, List<KeystoneEvent> tooLate, DateTimeOffset now)
    {
        await Append(_options.StatsTopic, "NORMAL", results.Select(r => ActivityEvents.Window(r, Partition, now)).ToList(), now);
        await Append(_options.TriggerTopic, "NORMAL", results.Where(r => !r.LateUpdate).Select(r => ActivityEvents.Trigger(r, Partition, now)).ToList(), now);
        await Append(_options.LateTopic, "NORMAL", tooLate.Select(e => e with
        {
            Metadata = e.Metadata.With("late_by_ms", ((long)((Watermark ?? now) - e.Timestamp).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        }).ToList(), now);
    }

    protected override Task<Guid> CheckpointEntity(string key, long covered) => key[..2] switch
    {
        "u:" => GrainRefs.Get<IUserGrain>(GrainFactory, key[2..]).Checkpoint(),
        "v:" => GrainRefs.Get<IVideoGrain>(GrainFactory, key[2..]).Checkpoint(Partition, covered),
        "p:" => GrainRefs.Get<IProfileGrain>(GrainFactory, key[2..]).Checkpoint(),
        _ => throw new InvalidOperationException($"unknown entity key '{key}'"),
    };

    public Task CheckpointNow() => Checkpoint();

    public Task<OperatorStats> GetStats() => Task.FromResult(new OperatorStats(
        Partition, Watermark, S.MaxEventTime, S.NextSequence, S.CheckpointedSequence, _events, _late, _tooLate, SegmentDuplicates,
        _fired, Checkpoints, LastCheckpointAt, S.Timers.Count, Replayed, _applyLag.Snapshot(), _clockSkewed));

    public Task ResetStats()
    {
        _events = _late = _tooLate = _fired = _clockSkewed = 0;
        SegmentDuplicates = Checkpoints = Replayed = 0;
        _applyLag.Clear();
        return Task.CompletedTask;
    }
}
