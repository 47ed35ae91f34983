using System.Buffers.Binary;
using Keystone.Activity;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Aggregation;

/// <summary>Checkpointed operator state: how far the log is covered by entity checkpoints, the watermark, pending timers.</summary>
public sealed class ActivityOperatorState
{
    public long NextSequence { get; set; }
    public long CheckpointedSequence { get; set; }
    public long Segment { get; set; }
    public DateTimeOffset? MaxEventTime { get; set; }

    /// <summary>User → end of its earliest window that has not fired (the operator's event-time timers).</summary>
    public Dictionary<string, DateTimeOffset> Timers { get; set; } = [];

    /// <summary>Recently applied stream segments, to recognise a redelivered message.</summary>
    public List<Guid> RecentSegments { get; set; } = [];
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
public sealed class ActivityOperatorGrain(
    [PersistentState("operator", StorageNames.State)] IPersistentState<ActivityOperatorState> state,
    IOperatorLogFactory logs,
    IOptions<AggregationOptions> options,
    IOptions<IngestOptions> ingestOptions,
    CheckpointMetrics checkpointMetrics,
    TimeProvider time,
    ILogger<ActivityOperatorGrain> logger)
    : Grain, IActivityOperatorGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    private const int RememberedSegments = 4096;

    private readonly AggregationOptions _options = options.Value;
    private readonly Dictionary<string, Guid> _touched = [];
    private readonly HashSet<string> _dirtyUsers = [];
    private readonly HashSet<string> _dirtyVideos = [];
    private readonly HashSet<string> _dirtyProfiles = [];
    private RecentIds<Guid> _segments = null!;
    private TumblingWindows _windows = null!;
    private IOperatorLog _log = null!;
    private IStreamProvider _provider = null!;
    private int _partition;
    private DateTimeOffset _lastReport;
    private long _events, _late, _tooLate, _duplicates, _fired, _checkpoints, _replayed;
    private DateTimeOffset? _lastCheckpointAt;
    private bool _topicsRegistered;
    private bool _checkpointing;
    private TaskCompletionSource? _delivery;
    private readonly LatencyHistogram _applyLag = new();

    private ActivityOperatorState S => state.State;

    private DateTimeOffset? Watermark => S.MaxEventTime - _options.OutOfOrderness;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        _windows = _options.Windows();
        _log = logs.Open($"activity-{_partition}");
        _provider = this.GetStreamProvider(StreamNames.Provider);
        _segments = new RecentIds<Guid>(RememberedSegments);
        foreach (var id in S.RecentSegments) _segments.TryAdd(id);

        // Recovery: what was logged after the last completed checkpoint is not yet durable in the entity grains.
        var pending = (await _log.ReadAsync(S.Segment, cancellationToken)).Where(r => r.Sequence > S.CheckpointedSequence).ToList();
        if (pending.Count > 0)
        {
            logger.LogInformation("Activity operator {Partition} replays {Count} logged deliveries after checkpoint {Checkpoint}", _partition, pending.Count, S.CheckpointedSequence);
            foreach (var record in pending)
            {
                var (segments, batch) = Decode(record.Payload);
                foreach (var id in segments) _segments.TryAdd(id);
                await Process(record.Sequence, batch.Events);
                S.NextSequence = Math.Max(S.NextSequence, record.Sequence);
                _replayed += batch.Count;
            }
        }

        // Interleaving: deliveries keep flowing while the barrier waits for thousands of state writes.
        this.RegisterGrainTimer(_ => Checkpoint(), new GrainTimerCreationOptions(_options.CheckpointInterval, _options.CheckpointInterval) { Interleave = true });
    }

    // No checkpoint on deactivation: entity grains write their own state when they deactivate, and whatever is not
    // covered by a completed checkpoint stays in the log for the next activation to replay (idempotently).

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on activity partition {Partition}", _partition);
        return Task.CompletedTask;
    }

    public async Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        // Keep only segments not seen before: a redelivered message changes nothing.
        var fresh = new List<BatchItem>();
        var segments = new List<Guid>();
        foreach (var item in items)
        {
            var batch = item.Item;
            foreach (var (id, start, count) in batch.SegmentRanges())
            {
                if (_segments.Contains(id))
                {
                    _duplicates += count;
                    continue;
                }
                segments.Add(id);
                var events = batch.Events;
                for (var i = start; i < start + count; i++) fresh.Add(new BatchItem(events[i], batch, i));
            }
        }
        if (segments.Count == 0) return;

        // The barrier interleaves with deliveries but never cuts one in half (see Checkpoint).
        var delivery = _delivery = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            // Durable before anything else happens: this is what makes acknowledging the delivery safe.
            var sequence = S.NextSequence + 1;
            var logged = EventBatch.Compose(Guid.NewGuid(), _partition, time.GetUtcNow(), fresh);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await _log.AppendAsync(S.Segment, sequence, Encode(segments, logged));
            checkpointMetrics.Written("log", logged.Count, clock.Elapsed);
            S.NextSequence = sequence;
            foreach (var id in segments) _segments.TryAdd(id);

            var replay = await Process(sequence, logged.Events);
            if (replay) await ReplayCurrentSegment();
        }
        finally
        {
            _delivery = null;
            delivery.SetResult();
        }
    }

    /// <summary>Applies one logged delivery; true when a grain turned out to have lost state and the segment must be replayed.</summary>
    private async Task<bool> Process(long sequence, KeystoneEvent[] events)
    {
        var now = time.GetUtcNow();
        var watermark = Watermark;
        var byUser = new Dictionary<string, List<KeystoneEvent>>(StringComparer.Ordinal);
        var catalog = new Dictionary<string, List<KeystoneEvent>>(StringComparer.Ordinal);
        var tooLate = new List<KeystoneEvent>();
        DateTimeOffset? maxEventTime = null;

        foreach (var e in events)
        {
            _events++;
            if (maxEventTime is not { } m || e.Timestamp > m) maxEventTime = e.Timestamp;
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
            Add(byUser, user, e);
        }

        var lostState = false;
        var results = new List<WindowResult>();

        // Users first: they turn positions into watch time for their videos and profiles.
        var userResults = await ForEach(byUser, (user, list) => GrainFactory.GetGrain<IUserGrain>(user).ApplyActivity(new ActivityBatch(_partition, sequence, watermark, [.. list])));
        // Grain-visible: the users have applied these events (in memory, queryable).
        var visibleAt = time.GetUtcNow().UtcTicks;
        foreach (var list in byUser.Values)
            foreach (var e in list) _applyLag.Record((visibleAt - e.Timestamp.UtcTicks) / TimeSpan.TicksPerMicrosecond);

        var contributions = new List<PlayContribution>();
        foreach (var (user, r) in userResults)
        {
            lostState |= Touch("u:" + user, r.ActivationId);
            _dirtyUsers.Add(user);
            contributions.AddRange(r.Contributions);
            results.AddRange(r.Reemitted);
            SetTimer(user, r.NextWindowEnd);
        }

        var playsByVideo = contributions.GroupBy(c => c.VideoId).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var videos = playsByVideo.Keys.Union(catalog.Keys).ToList();
        var genres = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var videoResults = await ForEach(videos.ToDictionary(v => v, v => 0), (video, _) => GrainFactory.GetGrain<IVideoGrain>(video).ApplyActivity(
            new VideoActivityBatch(_partition, sequence, playsByVideo.GetValueOrDefault(video) ?? [], [.. catalog.GetValueOrDefault(video) ?? []])));
        foreach (var (video, r) in videoResults)
        {
            lostState |= Touch("v:" + video, r.ActivationId);
            _dirtyVideos.Add(video);
            genres[video] = r.Genres;
        }

        var byProfile = contributions.Where(c => c.ProfileId is not null).GroupBy(c => c.ProfileId!).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var profileResults = await ForEach(byProfile, (profile, plays) => GrainFactory.GetGrain<IProfileGrain>(profile).ApplyActivity(
            new ProfileActivityBatch(_partition, sequence, plays, plays.Select(p => p.VideoId).Distinct().Where(genres.ContainsKey).ToDictionary(v => v, v => genres[v], StringComparer.Ordinal))));
        foreach (var (profile, r) in profileResults)
        {
            lostState |= Touch("p:" + profile, r.ActivationId);
            _dirtyProfiles.Add(profile);
        }

        // Advance the watermark, then fire the windows it has passed.
        if (maxEventTime is { } max && (S.MaxEventTime is not { } current || max > current)) S.MaxEventTime = max;
        await ReportWatermark(now);
        if (Watermark is { } wm)
        {
            var due = S.Timers.Where(t => t.Value <= wm).Select(t => t.Key).ToList();
            var fired = await ForEach(due.ToDictionary(u => u, _ => 0), (user, _) => GrainFactory.GetGrain<IUserGrain>(user).AdvanceWatermark(_partition, wm));
            foreach (var (user, f) in fired)
            {
                lostState |= Touch("u:" + user, f.ActivationId);
                if (f.Fired.Count > 0) _dirtyUsers.Add(user);
                results.AddRange(f.Fired);
                _fired += f.Fired.Count;
                SetTimer(user, f.NextWindowEnd);
            }
        }

        await Emit(results, tooLate, now);
        return lostState;
    }

    private static void Add(Dictionary<string, List<KeystoneEvent>> map, string key, KeystoneEvent e)
    {
        if (!map.TryGetValue(key, out var list)) map[key] = list = [];
        list.Add(e);
    }

    private void SetTimer(string user, DateTimeOffset? end)
    {
        if (end is { } e) S.Timers[user] = e;
        else S.Timers.Remove(user);
    }

    // True when the grain answered from a different activation than earlier in this checkpoint period: it lost what it
    // applied in memory since its last write, so the current log segment must be replayed to it.
    private bool Touch(string key, Guid activation)
    {
        if (_touched.TryGetValue(key, out var known) && known != activation)
        {
            _touched[key] = activation;
            logger.LogWarning("Activity operator {Partition}: {Key} was reactivated since the last checkpoint; replaying the log segment", _partition, key);
            return true;
        }
        _touched[key] = activation;
        return false;
    }

    private Task<List<(string Key, TResult Result)>> ForEach<TValue, TResult>(Dictionary<string, TValue> items, Func<string, TValue, Task<TResult>> call) =>
        ForEach(items, call, _options.DispatchConcurrency);

    private async Task<List<(string Key, TResult Result)>> ForEach<TValue, TResult>(Dictionary<string, TValue> items, Func<string, TValue, Task<TResult>> call, int concurrency)
    {
        var results = new List<(string, TResult)>(items.Count);
        var pending = new List<(string Key, Task<TResult> Task)>();
        foreach (var (key, value) in items)
        {
            pending.Add((key, call(key, value)));
            if (pending.Count >= concurrency) await Drain();
        }
        await Drain();
        return results;

        async Task Drain()
        {
            await Task.WhenAll(pending.Select(p => p.Task));
            foreach (var (key, task) in pending) results.Add((key, task.Result));
            pending.Clear();
        }
    }

    private async Task ReportWatermark(DateTimeOffset now)
    {
        if (now - _lastReport < TimeSpan.FromSeconds(1)) return;
        _lastReport = now;
        await GrainFactory.GetGrain<IWatermarkCoordinatorGrain>(0).Report(_partition, S.MaxEventTime);
    }

    private async Task Emit(List<WindowResult> results, List<KeystoneEvent> tooLate, DateTimeOffset now)
    {
        if (!_topicsRegistered)
        {
            var directory = GrainFactory.GetGrain<ITopicDirectoryGrain>(0);
            foreach (var topic in new[] { _options.StatsTopic, _options.TriggerTopic, _options.LateTopic }) await directory.Register(topic, "NORMAL");
            _topicsRegistered = true;
        }
        var options = ingestOptions.Value;
        async Task Append(string topic, List<KeystoneEvent> events)
        {
            if (events.Count == 0) return;
            var stream = _provider.GetStream<EventBatch>(StreamId.Create(topic, StreamNames.PartitionKey(_partition)));
            foreach (var chunk in StreamChunker.Chunk(events.Select(e => new BatchItem(e)).ToList(), options.MaxEventsPerStreamMessage, options.MaxBytesPerStreamMessage))
                await stream.OnNextAsync(EventBatch.Compose(Guid.NewGuid(), _partition, now, chunk));
        }

        await Append(_options.StatsTopic, results.Select(r => ActivityEvents.Window(r, _partition, now)).ToList());
        await Append(_options.TriggerTopic, results.Where(r => !r.LateUpdate).Select(r => ActivityEvents.Trigger(r, _partition, now)).ToList());
        await Append(_options.LateTopic, tooLate.Select(e => e with
        {
            Metadata = e.Metadata.With("late_by_ms", ((long)((Watermark ?? now) - e.Timestamp).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        }).ToList());
    }

    private async Task ReplayCurrentSegment()
    {
        // From the previous segment: a barrier may be in progress, with its records not yet covered.
        var records = await _log.ReadAsync(Math.Max(0, S.Segment - 1));
        foreach (var record in records.Where(r => r.Sequence > S.CheckpointedSequence))
        {
            var (_, batch) = Decode(record.Payload);
            await Process(record.Sequence, batch.Events);
            _replayed += batch.Count;
        }
    }

    /// <summary>
    /// The barrier: every entity grain touched since the last checkpoint writes its state; then the operator records
    /// that the log is covered up to where the barrier started, and drops the segments before it. Deliveries go on
    /// meanwhile, into a new log segment and new dirty sets; they are covered by the next checkpoint.
    /// </summary>
    private async Task Checkpoint()
    {
        if (_checkpointing) return;
        if (S.NextSequence == S.CheckpointedSequence && _dirtyUsers.Count == 0 && _dirtyVideos.Count == 0 && _dirtyProfiles.Count == 0) return;
        _checkpointing = true;
        try
        {
            // A delivery in progress has logged a sequence it has not applied everywhere yet, in the current segment:
            // covering it, or dropping that segment, would lose it in a crash. Start between deliveries instead.
            while (_delivery is { } inProgress) await inProgress.Task;
            var covered = S.NextSequence;
            var users = _dirtyUsers.ToList();
            var videos = _dirtyVideos.ToList();
            var profiles = _dirtyProfiles.ToList();
            _dirtyUsers.Clear();
            _dirtyVideos.Clear();
            _dirtyProfiles.Clear();
            _touched.Clear();
            var segment = ++S.Segment;
            try
            {
                var limit = _options.CheckpointConcurrency;
                await ForEach(users.ToDictionary(u => u, _ => 0), async (u, _) => { await GrainFactory.GetGrain<IUserGrain>(u).Checkpoint(); return 0; }, limit);
                await ForEach(videos.ToDictionary(v => v, _ => 0), async (v, _) => { await GrainFactory.GetGrain<IVideoGrain>(v).Checkpoint(); return 0; }, limit);
                await ForEach(profiles.ToDictionary(p => p, _ => 0), async (p, _) => { await GrainFactory.GetGrain<IProfileGrain>(p).Checkpoint(); return 0; }, limit);
            }
            catch
            {
                // Not covered after all: these grains must be flushed by the next barrier.
                _dirtyUsers.UnionWith(users);
                _dirtyVideos.UnionWith(videos);
                _dirtyProfiles.UnionWith(profiles);
                throw;
            }

            S.CheckpointedSequence = Math.Max(S.CheckpointedSequence, covered);
            S.RecentSegments = [.. _segments.InOrder().TakeLast(RememberedSegments)];
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await state.WriteStateAsync();
            checkpointMetrics.Written("operator", 0, clock.Elapsed);
            _checkpoints++;
            _lastCheckpointAt = time.GetUtcNow();
            await _log.DeleteBeforeAsync(segment);
        }
        finally
        {
            _checkpointing = false;
        }
    }

    public Task CheckpointNow() => Checkpoint();

    public Task<OperatorStats> GetStats() => Task.FromResult(new OperatorStats(
        _partition, Watermark, S.MaxEventTime, S.NextSequence, S.CheckpointedSequence, _events, _late, _tooLate, _duplicates,
        _fired, _checkpoints, _lastCheckpointAt, S.Timers.Count, _replayed, _applyLag.Snapshot()));

    public Task ResetStats()
    {
        _events = _late = _tooLate = _duplicates = _fired = _checkpoints = _replayed = 0;
        _applyLag.Clear();
        return Task.CompletedTask;
    }

    private static byte[] Encode(List<Guid> segments, EventBatch batch)
    {
        var encoded = batch.CopyEncoded();
        var payload = new byte[4 + segments.Count * 16 + encoded.Length];
        BinaryPrimitives.WriteInt32LittleEndian(payload, segments.Count);
        for (var i = 0; i < segments.Count; i++) segments[i].TryWriteBytes(payload.AsSpan(4 + i * 16));
        encoded.CopyTo(payload.AsSpan(4 + segments.Count * 16));
        return payload;
    }

    private (List<Guid> Segments, EventBatch Batch) Decode(byte[] payload)
    {
        var count = BinaryPrimitives.ReadInt32LittleEndian(payload);
        var segments = new List<Guid>(count);
        for (var i = 0; i < count; i++) segments.Add(new Guid(payload.AsSpan(4 + i * 16, 16)));
        var batch = EventBatch.FromEncoded(payload[(4 + count * 16)..], partition: _partition);
        return (segments, batch);
    }
}
