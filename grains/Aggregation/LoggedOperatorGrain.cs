using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;
using System.Text.Json.Serialization;
using Keystone.Storage;

namespace Keystone.Aggregation;

/// <summary>What every logged operator checkpoints: how far its log is covered, and the stream segments it has seen.</summary>
public class LoggedOperatorState
{
    public long NextSequence { get; set; }
    public long CheckpointedSequence { get; set; }
    public long Segment { get; set; }

    /// <summary>Recently applied stream segments, to recognise a redelivered message.</summary>
    [JsonConverter(typeof(GuidListBase64Converter))]
    public List<Guid> RecentSegments { get; set; } = [];
}

/// <summary>
/// The exactly-once machinery shared by the stateful operators (activity windows, ad campaigns): one operator per
/// partition of its input topic, which
/// <list type="number">
/// <item>drops stream segments it has already seen (redelivered messages);</item>
/// <item>appends every delivery to a write-ahead log in blob storage before anything else, so acknowledging the
/// delivery is safe;</item>
/// <item>hands the delivery to <see cref="Process"/>, which dispatches it to entity grains (one call per grain) that
/// apply idempotently and report their activation through <see cref="Touch"/>;</item>
/// <item>runs a checkpoint barrier every <see cref="CheckpointInterval"/>: every touched entity grain writes its state
/// (group commit), then the log is truncated;</item>
/// <item>after a crash, replays the log from the last barrier; if an entity grain lost its memory meanwhile (a new
/// activation), replays the current segment to it.</item>
/// </list>
/// </summary>
public abstract class LoggedOperatorGrain<TState>(
    IPersistentState<TState> state,
    IOperatorLogFactory logs,
    IngestOptions ingestOptions,
    CheckpointMetrics checkpointMetrics,
    PipelineMetrics pipelineMetrics,
    TimeProvider time,
    ILogger logger)
    : Grain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
    where TState : LoggedOperatorState, new()
{
    private const int RememberedSegments = 4096;

    private readonly Keystone.Checkpointing.TouchedEntities _touched = new();
    private readonly HashSet<string> _registeredTopics = [];
    private RecentIds<Guid> _segments = null!;
    private IOperatorLog _log = null!;
    private IStreamProvider _provider = null!;
    private bool _checkpointing;
    // A replay from the last checkpoint is owed (an entity lost its memory, a silo left, a replay failed), or on its way.
    private readonly Keystone.Checkpointing.ReplayDebt _replay = new();

    // With the fronting log, this operator keeps no log of its own: it makes its entities durable when a checkpoint
    // barrier arrives (at most every CheckpointInterval) and acknowledges the barriers it has covered; a crash, or an
    // entity that lost its memory, is recovered by the router replaying the fronting log (see Keystone.Checkpointing).
    private bool _fronting;
    private Keystone.Checkpointing.SiloStopping _stopping = null!;

    // Which barriers may be acknowledged around a replay from the fronting log (see ReplayCurrentSegment).
    private readonly Keystone.Checkpointing.ReplayBarrierGate _barriers = new();
    private IGrainTimer? _replayer;
    // A replay that failed is tried again after this long, by itself: with the fronting log no delivery asks for it,
    // and the next checkpoint may be minutes away (the router can be out of reach while a dead silo's share of the
    // grain directory is recovered).
    private static readonly TimeSpan ReplayRetry = TimeSpan.FromSeconds(5);
    private IGrainTimer? _replayRetry;

    // The oldest log segment not yet truncated: a replay to a grain that lost its memory starts here.
    private long _firstLiveSegment;
    private TaskCompletionSource? _delivery;

    /// <summary>How long appending a delivery to the log takes: the one durable step on every delivery's path.</summary>
    protected LatencyHistogram LogAppendLatency { get; } = new();

    protected long SegmentDuplicates { get; set; }

    protected long Checkpoints { get; set; }
    protected long Replayed { get; set; }
    protected DateTimeOffset? LastCheckpointAt { get; set; }
    protected int Partition { get; private set; }
    protected TState S => state.State;
    protected TimeProvider Time => time;

    /// <summary>Blob name prefix of the log: <c>{LogName}-{partition}/{segment}</c>.</summary>
    protected abstract string LogName { get; }
    protected abstract TimeSpan CheckpointInterval { get; }
    protected abstract int CheckpointConcurrency { get; }
    protected abstract int DispatchConcurrency { get; }

    /// <summary>
    /// Applies one logged delivery, telling <see cref="Touch(string, Guid)"/> which activation of each entity answered.
    /// <paramref name="arrivedAt"/> is when the delivery's events were ingested (logged with it, so a replay sees the same).
    /// </summary>
    protected abstract Task Process(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt);

    /// <summary>Makes durable what the entity grain behind a key given to <see cref="Touch"/> applied from this
    /// partition, up to log position <paramref name="covered"/>; returns the activation that did.</summary>
    protected abstract Task<Guid> CheckpointEntity(string key, long covered);

    /// <summary>
    /// Called as a checkpoint starts, with every delivery it covers applied: outputs with external effects decided so
    /// far (see <see cref="Keystone.Checkpointing.CommittedExport{TRecord}"/>). The returned action writes them out; it
    /// runs once the entities are durable and before this operator records the checkpoint, so that a crash on either
    /// side of it replays the decisions (recalled by the entities) rather than losing them. Null: nothing to write.
    /// </summary>
    protected virtual Func<Task>? SealOutputs() => null;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        _log = logs.Open($"{LogName}-{Partition}");
        _firstLiveSegment = S.Segment;
        _provider = this.GetStreamProvider(StreamNames.Provider);
        _segments = new RecentIds<Guid>(RememberedSegments);
        foreach (var id in S.RecentSegments) _segments.TryAdd(id);
        _fronting = ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<Keystone.Checkpointing.CheckpointOptions>>().Value.Logging;
        _stopping = ServiceProvider.GetRequiredService<Keystone.Checkpointing.SiloStopping>();
        if (_fronting)
        {
            // Deliveries replayed after a restart are grouped differently from the first time: number them after
            // anything this partition numbered before, so an entity grain never takes one for a delivery it applied
            // (it de-duplicates them by event id instead).
            S.NextSequence = Math.Max(S.NextSequence, S.CheckpointedSequence) + (1L << 32);
            LastCheckpointAt = time.GetUtcNow();
            return;
        }

        // Recovery: what was logged after the last completed checkpoint is not yet durable in the entity grains.
        var pending = (await _log.ReadAsync(S.Segment, cancellationToken)).Where(r => r.Sequence > S.CheckpointedSequence).ToList();
        if (pending.Count > 0)
        {
            logger.LogInformation("{Log} operator {Partition} replays {Count} logged deliveries after checkpoint {Checkpoint}", LogName, Partition, pending.Count, S.CheckpointedSequence);
            foreach (var record in pending)
            {
                var (segments, batch, arrivedAt) = Decode(record.Payload);
                foreach (var id in segments) _segments.TryAdd(id);
                await Process(record.Sequence, batch.Events, arrivedAt);
                S.NextSequence = Math.Max(S.NextSequence, record.Sequence);
                Replayed += batch.Count;
            }
        }

        // Interleaving: deliveries keep flowing while the barrier waits for thousands of state writes. (With the
        // fronting log, barriers arriving in the stream start checkpoints instead; see CoverBarriers.)
        this.RegisterGrainTimer(_ => CheckpointUnlessStopping(), new GrainTimerCreationOptions(CheckpointInterval, CheckpointInterval) { Interleave = true });
    }

    // No checkpoint on deactivation: entity grains write their own state when they deactivate, and whatever is not
    // covered by a completed checkpoint stays in the log for the next activation to replay (idempotently).

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on {Log} partition {Partition}", LogName, Partition);
        return Task.CompletedTask;
    }

    public async Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        // Keep only segments not seen before: a redelivered message changes nothing. The arrays are sized for all of
        // them (the usual case) and used as they are. Items (event plus where its bytes are) are needed only to encode
        // the operator's own log; behind the fronting log the events alone are processed.
        var capacity = 0;
        foreach (var item in items) capacity += item.Item.Count;
        var fresh = new KeystoneEvent[capacity];
        var freshItems = _fronting ? null : new BatchItem[capacity];
        var freshCount = 0;
        var segments = new List<Guid>();
        List<EventBatch>? barriers = null;
        foreach (var item in items)
        {
            var batch = item.Item;
            if (batch.IsBarrier)
            {
                (barriers ??= []).Add(batch);
                continue;
            }
            foreach (var (id, start, count) in batch.SegmentRanges())
            {
                if (_segments.Contains(id))
                {
                    SegmentDuplicates += count;
                    continue;
                }
                segments.Add(id);
                var events = batch.Events;
                for (var i = start; i < start + count; i++)
                {
                    if (freshItems is not null) freshItems[freshCount] = new BatchItem(events[i], batch, i);
                    fresh[freshCount++] = events[i];
                }
            }
        }
        if (segments.Count == 0)
        {
            if (_fronting) await CoverBarriers(barriers);
            else Acknowledge(barriers);
            return;
        }

        // The barrier interleaves with deliveries but never cuts one in half (see Checkpoint).
        var delivery = _delivery = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            // Durable before anything else happens: this is what makes acknowledging the delivery safe.
            var sequence = S.NextSequence + 1;
            var arrivedAt = ClockSkew.ArrivalOf(items.Select(i => i.Item), time.GetUtcNow());
            if (freshCount < fresh.Length) Array.Resize(ref fresh, freshCount);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (freshItems is not null)
            {
                if (freshCount < freshItems.Length) Array.Resize(ref freshItems, freshCount);
                await _log.AppendAsync(S.Segment, sequence, Encode(segments, EventBatch.ComposeOwned(Guid.NewGuid(), Partition, arrivedAt, freshItems)));
                checkpointMetrics.Written("log", freshCount, clock.Elapsed);
                // What came before the fronting checkpoints' barriers is now in this operator's own log.
                Acknowledge(barriers);
                LogAppendLatency.Record((long)clock.Elapsed.TotalMicroseconds);
            }
            S.NextSequence = sequence;
            foreach (var id in segments) _segments.TryAdd(id);

            try
            {
                if (_replay.Owed && !_fronting) await ReplayOwed();
                // An entity that answered from a new activation owes a replay even when this delivery failed after it
                // and went through on a retry, where the same activation answers as if nothing had happened.
                await ProcessOrDeadLetter(sequence, fresh, arrivedAt);
                if (_replay.Owed && _fronting) ScheduleReplay("an entity grain answered from a new activation");
                else if (_replay.Owed) await ReplayOwed();
            }
            catch when (!_fronting)
            {
                // Logged, and its segments marked seen, so a redelivery is dropped: only a replay of the log applies it
                // now, and no checkpoint may cover it before one has.
                _replay.Owe();
                throw;
            }
            pipelineMetrics.StageBatch(LogName, clock.Elapsed, fresh, time.GetUtcNow());
        }
        finally
        {
            _delivery = null;
            delivery.SetResult();
        }
        if (_fronting) await CoverBarriers(barriers);
    }

    /// <summary>
    /// Barriers that reached this operator are acknowledged once its entities are durable up to them: at the first
    /// barrier after <see cref="CheckpointInterval"/> has passed, a checkpoint starts (every touched entity writes), and
    /// when it completes, the barriers that had arrived before it started are acknowledged together. The checkpoint
    /// runs interleaved with deliveries, as on the timer without the fronting log: thousands of entity writes must not
    /// hold up the stream. Between checkpoints, barriers wait: the fronting log keeps what they would cover.
    /// </summary>
    private Task CoverBarriers(List<EventBatch>? barriers)
    {
        if (barriers is null) return Task.CompletedTask;
        _barriers.Arrived(barriers.Select(b => b.Barrier));
        if (_coverer is not null) return Task.CompletedTask;
        if (LastCheckpointAt is { } last && time.GetUtcNow() - last < CheckpointInterval && _touched.Count > 0) return Task.CompletedTask;
        _coverer = this.RegisterGrainTimer(CheckpointAndAcknowledge, new GrainTimerCreationOptions(TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = true });
        return Task.CompletedTask;
    }

    private IGrainTimer? _coverer;

    private async Task CheckpointAndAcknowledge(CancellationToken cancellationToken)
    {
        try
        {
            var covering = _barriers.Waiting.ToList();
            var before = Checkpoints;
            var replays = _barriers.Replays;
            await Checkpoint();
            // Nothing to write counts as covered too; a checkpoint that found lost grains does not, nor one that a
            // replay overtook (the barriers it would cover were dropped).
            if (Checkpoints == before && (_touched.Count > 0 || _replay.Owed)) return;
            if (_barriers.Replays != replays || _barriers.Replaying) return;
            LastCheckpointAt = time.GetUtcNow();
            var coordinator = GrainFactory.GetGrain<Keystone.Checkpointing.ICheckpointCoordinatorGrain>(0);
            foreach (var n in covering) coordinator.Ack(n, Partition, InputTopic).Ignore();
            _barriers.Acknowledged(covering.Count);
        }
        catch (Keystone.Checkpointing.SiloStoppingException)
        {
            logger.LogInformation("{Log} operator {Partition}: checkpoint cut short, the silo is stopping; the fronting log replays what it would have covered", LogName, Partition);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "{Log} operator {Partition}: checkpoint for the fronting barriers failed; the next barrier retries", LogName, Partition);
        }
        finally
        {
            _coverer?.Dispose();
            _coverer = null;
        }
    }

    private void Acknowledge(List<EventBatch>? barriers)
    {
        if (barriers is null) return;
        var coordinator = GrainFactory.GetGrain<Keystone.Checkpointing.ICheckpointCoordinatorGrain>(0);
        foreach (var b in barriers) coordinator.Ack(b.Barrier, Partition, InputTopic).Ignore();
    }

    /// <summary>Attempts at a whole delivery before its events are tried one by one.</summary>
    private const int DeliveryAttempts = 3;

    /// <summary>The topic this operator consumes: where a dead-lettered event is replayed to.</summary>
    protected abstract string InputTopic { get; }

    /// <summary>Whether a failing delivery may be applied one event at a time to find its poison events. Operators
    /// whose entity grains recognise replays by log position (not only by event id) cannot.</summary>
    protected virtual bool CanIsolate => true;

    /// <summary>
    /// Replaces Orleans' "retry for a minute, then skip" with: retry the delivery with backoff; if it keeps failing,
    /// apply its events one by one and send those that fail on their own (poison) to the dead-letter store, so the
    /// partition keeps flowing and nothing is lost. When the store cannot be written either (storage is down), keep
    /// retrying with capped backoff: back-pressure, never a drop. Retrying is safe: entity grains apply by event id.
    /// </summary>
    /// <remarks>
    /// A failure of the cluster or of storage (<see cref="DeliveryFailures.IsTransient"/>) says nothing about the
    /// events: a grain on a silo that was just killed cannot be reached until the cluster declares it dead, which takes
    /// seconds to a minute, and every event bound for it would fail "on its own" meanwhile. Such a delivery is retried
    /// until it goes through, however long that takes (the partition's lag shows it), and never isolated.
    /// </remarks>
    private async Task ProcessOrDeadLetter(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt)
    {
        // Failures that were the events' (not the cluster's) since the delivery was last isolated.
        var failures = 0;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await Process(sequence, events, arrivedAt);
                return;
            }
            catch (Exception e) when (DeliveryFailures.IsTransient(e))
            {
                Unavailable(e, sequence, attempt);
            }
            catch (Exception e) when (++failures < DeliveryAttempts || !CanIsolate)
            {
                logger.LogWarning(e, "{Log} operator {Partition}: delivery {Sequence} failed (attempt {Attempt}); retrying", LogName, Partition, sequence, attempt);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "{Log} operator {Partition}: delivery {Sequence} failed {Attempts} times; applying its {Count} events one by one", LogName, Partition, sequence, attempt, events.Length);
                var (poison, unavailable) = await Isolate(sequence, events, arrivedAt);
                failures = 0;
                if (unavailable is not null) Unavailable(unavailable, sequence, attempt);
                else if (poison.Count == 0) return;
                else if (await Park(sequence, poison, attempt + 1)) return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5_000, 100 * (1 << Math.Min(attempt, 10)))));
        }
    }

    // Each event on its own: those that fail are poison, unless a failure is the cluster's, which ends the isolation
    // (the whole delivery is tried again, and isolated again if it still fails).
    private async Task<(List<(KeystoneEvent Event, Exception Error)> Poison, Exception? Unavailable)> Isolate(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt)
    {
        var poison = new List<(KeystoneEvent Event, Exception Error)>();
        foreach (var single in events)
        {
            try { await Process(sequence, [single], arrivedAt); }
            catch (Exception error) when (DeliveryFailures.IsTransient(error)) { return (poison, error); }
            catch (Exception error) { poison.Add((single, error)); }
        }
        return (poison, null);
    }

    // False when the store cannot be written either (storage is down): the delivery is retried.
    private async Task<bool> Park(long sequence, List<(KeystoneEvent Event, Exception Error)> poison, int attempts)
    {
        try
        {
            await ServiceProvider.GetRequiredService<Keystone.Operations.DeadLetterStore>().ParkAsync(LogName, poison, attempts, time.GetUtcNow(), InputTopic);
            pipelineMetrics.DeadLettered(LogName, poison.Count);
            logger.LogError("{Log} operator {Partition}: {Count} poison events of delivery {Sequence} went to the dead-letter store: {Error}", LogName, Partition, poison.Count, sequence, poison[0].Error.Message);
            return true;
        }
        catch (Exception storeError)
        {
            logger.LogWarning(storeError, "{Log} operator {Partition}: the dead-letter store cannot be written either; retrying delivery {Sequence}", LogName, Partition, sequence);
            return false;
        }
    }

    // The first failure of a delivery with its stack; the retries after it in one line each.
    private void Unavailable(Exception e, long sequence, int attempt)
    {
        if (attempt == 1) logger.LogWarning(e, "{Log} operator {Partition}: delivery {Sequence} failed on an unavailable silo or storage; retrying until it goes through", LogName, Partition, sequence);
        else logger.LogWarning("{Log} operator {Partition}: delivery {Sequence} still failing (attempt {Attempt}): {Error}", LogName, Partition, sequence, attempt, e.Message);
    }

    /// <summary><see cref="Touch(string, Guid)"/> for the key <c>{kind}:{id}</c>. An entity touched before reuses the
    /// key it already has: operators touch every entity of every delivery, and a new key string each time was an object
    /// per entity and delivery.</summary>
    protected void Touch(char kind, string id, Guid activation) => Touch([kind, ':'], id, activation);

    /// <summary><see cref="Touch(string, Guid)"/> for the key <paramref name="prefix"/> + <paramref name="id"/>,
    /// building the string only the first time the key is seen (the known one is found by its characters).</summary>
    protected void Touch(ReadOnlySpan<char> prefix, string id, Guid activation) => Touch(_touched.Key(prefix, id), activation);

    /// <summary>
    /// Records that an entity grain applied part of this checkpoint period (so the next barrier writes it). One that
    /// answered from a different activation than before in this period lost what it applied in memory since its last
    /// write: a replay of the log since the last checkpoint is owed to it, whatever happens to this delivery.
    /// </summary>
    protected void Touch(string key, Guid activation)
    {
        if (!_touched.Touch(key, activation)) return;
        _replay.Owe();
        logger.LogWarning("{Log} operator {Partition}: {Key} was reactivated since the last checkpoint; replaying the log segment", LogName, Partition, key);
    }

    /// <summary>Calls <paramref name="call"/> for every key, at most <see cref="DispatchConcurrency"/> at a time.</summary>
    protected Task<List<(string Key, TResult Result)>> ForEach<TValue, TResult>(Dictionary<string, TValue> items, Func<string, TValue, ValueTask<TResult>> call) =>
        ForEach(items, call, DispatchConcurrency);

    /// <summary>
    /// Calls <paramref name="call"/> for every item, at most <paramref name="concurrency"/> at a time, and returns the
    /// results in the order of <paramref name="items"/>. Like <c>Task.WhenAll</c>, a failure surfaces only after every
    /// call in flight has finished, so no entity is still applying when the caller retries the delivery.
    /// </summary>
    /// <remarks>The entity methods return <see cref="ValueTask{TResult}"/>: Orleans then hands back its pooled
    /// completion source as it is, where a <c>Task</c>-returning method wraps it in a new task for every call; the
    /// group is awaited once (<see cref="Keystone.Pipeline.ValueTaskGroup"/>).</remarks>
    private static async Task<List<(string Key, TResult Result)>> ForEach<TValue, TResult>(Dictionary<string, TValue> items, Func<string, TValue, ValueTask<TResult>> call, int concurrency)
    {
        var keys = new string[items.Count];
        var values = new TValue[items.Count];
        var n = 0;
        foreach (var (key, value) in items) (keys[n], values[n++]) = (key, value);
        var results = await ForEach(values, (i, value) => call(keys[i], value), concurrency);
        var list = new List<(string, TResult)>(results.Length);
        for (var i = 0; i < results.Length; i++) list.Add((keys[i], results[i]));
        return list;
    }

    /// <summary>Calls <paramref name="call"/> (with each item's index) for every item, at most
    /// <see cref="DispatchConcurrency"/> at a time; the results are in the order of <paramref name="items"/>.</summary>
    protected Task<TResult[]> ForEach<TItem, TResult>(IReadOnlyList<TItem> items, Func<int, TItem, ValueTask<TResult>> call) =>
        ForEach(items, call, DispatchConcurrency);

    private static async Task<TResult[]> ForEach<TItem, TResult>(IReadOnlyList<TItem> items, Func<int, TItem, ValueTask<TResult>> call, int concurrency)
    {
        var results = new TResult[items.Count];
        var pending = new ValueTask<TResult>[Math.Min(items.Count, concurrency)];
        for (var start = 0; start < items.Count; start += pending.Length)
        {
            var count = Math.Min(pending.Length, items.Count - start);
            for (var i = 0; i < count; i++) pending[i] = Start(call, start + i, items[start + i]);
            await Keystone.Pipeline.ValueTaskGroup.WhenAll(pending, count, results, start);
        }
        return results;
    }

    // A call that throws before it returns its task counts as that call's failure, as it would inside Task.WhenAll.
    private static ValueTask<TResult> Start<TItem, TResult>(Func<int, TItem, ValueTask<TResult>> call, int index, TItem item)
    {
        try
        {
            return call(index, item);
        }
        catch (Exception e)
        {
            return ValueTask.FromException<TResult>(e);
        }
    }

    /// <summary>
    /// Appends events to this partition of a topic (registering the topic on first use). With
    /// <paramref name="sequence"/>, segment ids are derived from the log position, so a delivery replayed after a
    /// crash produces the same segments and consumers that remember segment ids (taps, operators) drop the repeat.
    /// </summary>
    protected async Task Append(string topic, string priority, IReadOnlyList<KeystoneEvent> events, DateTimeOffset now, long? sequence = null)
    {
        if (events.Count == 0) return;
        if (_registeredTopics.Add(topic)) await GrainFactory.GetGrain<ITopicDirectoryGrain>(0).Register(topic, priority);
        var stream = _provider.GetStream<EventBatch>(StreamId.Create(topic, StreamNames.PartitionKey(Partition)));
        var chunk = 0;
        var all = new BatchItem[events.Count];
        for (var i = 0; i < all.Length; i++) all[i] = new BatchItem(events[i]);
        // Every chunk is an array of its own (the whole one when it fits), so the message can own it.
        foreach (var items in StreamChunker.Chunk(all, ingestOptions.MaxEventsPerStreamMessage, ingestOptions.MaxBytesPerStreamMessage))
        {
            var id = sequence is { } s ? DerivedId($"{LogName}/{Partition}/{s}/{topic}/{chunk++}") : Guid.NewGuid();
            await stream.OnNextAsync(EventBatch.ComposeOwned(id, Partition, now, items));
        }
    }

    private static Guid DerivedId(string name)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
        return new Guid(hash[..16]);
    }

    /// <summary>
    /// A silo left the cluster: entity grains that lived on it lost what they applied since the last checkpoint, and
    /// a router or operator that moved may have left entities behind that nobody would replay to. Without waiting for
    /// the next delivery or checkpoint to notice, replay from the last checkpoint (entities that kept their memory
    /// drop the repeats by event id).
    /// </summary>
    public Task SiloLeft(string silo)
    {
        ScheduleReplay($"silo {silo} left the cluster");
        return Task.CompletedTask;
    }

    /// <summary>Starts a replay from the last checkpoint in the background. With the fronting log it runs interleaved
    /// with deliveries: the router puts the replayed events on the same streams that deliver to this operator, which
    /// must keep flowing. With the operator's own log it runs as a turn of its own, as a delivery does: graph vertices
    /// recognise what they applied by log position, so a newer delivery applied in the middle of the replay would make
    /// them drop the older replayed ones.</summary>
    private void ScheduleReplay(string reason)
    {
        // One already on its way leaves the debt owed (see ReplayDebt): what it is owed for may have happened after
        // that replay passed the entity, so the next checkpoint or delivery replays again before anything is covered.
        if (!_replay.TryStart()) return;
        logger.LogWarning("{Log} operator {Partition}: {Reason}; replaying from the last checkpoint", LogName, Partition, reason);
        if (_fronting) _barriers.ReplayAsked();
        _replayer = this.RegisterGrainTimer(async _ =>
        {
            // Like a delivery, an own-log replay holds a checkpoint back until it is done (see Checkpoint).
            var replay = _fronting ? null : _delivery = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var succeeded = false;
            try
            {
                await ReplayCurrentSegment();
                succeeded = true;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "{Log} operator {Partition}: the replay from the last checkpoint failed; it is tried again in {Retry} s, or sooner by the next checkpoint", LogName, Partition, ReplayRetry.TotalSeconds);
                RetryReplayLater();
            }
            finally
            {
                if (replay is not null)
                {
                    _delivery = null;
                    replay.SetResult();
                }
                _replayer?.Dispose();
                _replayer = null;
                _replay.Ended(succeeded);
            }
        }, new GrainTimerCreationOptions(TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = _fronting });
    }

    private void RetryReplayLater()
    {
        _replayRetry?.Dispose();
        _replayRetry = this.RegisterGrainTimer(_ =>
        {
            _replayRetry?.Dispose();
            _replayRetry = null;
            // Unless a checkpoint or delivery has replayed meanwhile.
            if (_replay.Owed) ScheduleReplay("the last replay failed");
            return Task.CompletedTask;
        }, new GrainTimerCreationOptions(ReplayRetry, Timeout.InfiniteTimeSpan) { Interleave = _fronting });
    }

    /// <summary>The owed replay, owed again if it fails.</summary>
    private async Task ReplayOwed()
    {
        _replay.TakeInline();
        try
        {
            await ReplayCurrentSegment();
        }
        catch
        {
            _replay.Owe();
            throw;
        }
    }

    private async Task ReplayCurrentSegment()
    {
        if (_fronting)
        {
            // No log of our own: forget the segments applied since the last checkpoint and have the router route
            // again what the fronting log holds past the covered position. Other consumers drop the repeats.
            _segments.Clear();
            foreach (var id in S.RecentSegments) _segments.TryAdd(id);
            // Whichever activation each entity touched since then answers next, the replay reaches it: no entity is a
            // reason for another replay until it has answered once.
            _touched.ReplayOnItsWay();
            // The barriers received so far precede the replayed events; so do those the router sends before it
            // starts the replay, which it tells us.
            if (!_barriers.Replaying) _barriers.ReplayAsked();
            try
            {
                // Asked after forgetting the segments: a replay the router starts from now on reaches this operator
                // whole, whoever asked for it.
                var router = GrainFactory.GetGrain<Keystone.Routing.IRouterGrain>(StreamNames.PartitionKey(Partition));
                var seen = await router.Rewinds();
                _barriers.ReplaySent(await router.Rewind(seen));
            }
            catch
            {
                _barriers.ReplayFailed();
                throw;
            }
            return;
        }
        // From the previous segment: a barrier may be in progress, with its records not yet covered. Numbered after
        // everything applied so far, as deliveries replayed from the fronting log are: an entity that already applied
        // a newer delivery must not take the replayed older positions for written with it (it recognises the repeats
        // by event id instead).
        var records = await _log.ReadAsync(_firstLiveSegment);
        foreach (var record in records.Where(r => r.Sequence > S.CheckpointedSequence))
        {
            var (_, batch, arrivedAt) = Decode(record.Payload);
            await Process(++S.NextSequence, batch.Events, arrivedAt);
            Replayed += batch.Count;
        }
    }

    private async Task CheckpointUnlessStopping()
    {
        try
        {
            await Checkpoint();
        }
        catch (Keystone.Checkpointing.SiloStoppingException)
        {
            logger.LogInformation("{Log} operator {Partition}: checkpoint cut short, the silo is stopping; the log replays what it would have covered", LogName, Partition);
        }
    }

    // A stopping silo starts no more entity writes and waits for these (see SiloStopping).
    private async Task<Guid> WriteEntity(string key, long covered)
    {
        if (!_stopping.TryEnter()) throw new Keystone.Checkpointing.SiloStoppingException();
        try
        {
            return await CheckpointEntity(key, covered);
        }
        finally
        {
            _stopping.Exit();
        }
    }

    /// <summary>
    /// The barrier: every entity grain touched since the last checkpoint writes its state; then the operator records
    /// that the log is covered up to where the barrier started, and drops the segments before it. Deliveries go on
    /// meanwhile, into a new log segment and a new dirty set; they are covered by the next checkpoint.
    /// </summary>
    protected async Task Checkpoint()
    {
        if (_checkpointing) return;
        if (S.NextSequence == S.CheckpointedSequence && _touched.Count == 0) return;
        _checkpointing = true;
        try
        {
            // A delivery in progress has logged a sequence it has not applied everywhere yet, in the current segment:
            // covering it, or dropping that segment, would lose it in a crash. Start between deliveries instead.
            while (_delivery is { } inProgress) await inProgress.Task;
            if (_replay.Owed)
            {
                // With the fronting log a replay runs beside the deliveries: one on its way is not doubled (the router
                // would serve them one after the other, and barriers between them would pass). This barrier is not
                // covered; a later one replays what is still owed first.
                if (_fronting && _replay.InFlight) return;
                await ReplayOwed();
            }
            var covered = S.NextSequence;
            var release = SealOutputs();
            var period = _touched.Cut();
            var segment = ++S.Segment;
            Guid[] written;
            try
            {
                written = await ForEach(period.Keys, (_, key) => new ValueTask<Guid>(WriteEntity(key, covered)), CheckpointConcurrency);
            }
            catch
            {
                // Not covered after all: the next barrier writes these entities, and must know which activation
                // applied their events (one whose write found its memory stale has deactivated).
                _touched.NotWritten(period);
                throw;
            }

            // An entity that answers from another activation than the one that applied (its silo died in between) has
            // just written a state without those events: covering them would lose them. Replay first, cover later.
            var lost = period.Lost(period.Keys.Zip(written));
            if (lost.Count > 0)
            {
                logger.LogWarning("{Log} operator {Partition}: {Count} grains (e.g. {Key}) lost their memory before the barrier; replaying the log instead of covering it", LogName, Partition, lost.Count, lost[0]);
                _touched.NotCovered(period);
                if (_fronting) ScheduleReplay($"{lost.Count} entity grains lost their memory before the barrier");
                else _replay.Owe();
                return;
            }
            // A replay started while this checkpoint wrote: what it covers may not have reached every entity yet.
            if (_barriers.Replaying)
            {
                _touched.NotCovered(period);
                return;
            }

            if (!_stopping.TryEnter()) throw new Keystone.Checkpointing.SiloStoppingException();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                if (release is not null) await release();
                S.CheckpointedSequence = Math.Max(S.CheckpointedSequence, covered);
                S.RecentSegments = [.. _segments.InOrder().TakeLast(RememberedSegments)];
                await state.WriteStateAsync();
            }
            finally
            {
                _stopping.Exit();
            }
            checkpointMetrics.Written("operator", 0, clock.Elapsed);
            Checkpoints++;
            LastCheckpointAt = time.GetUtcNow();
            if (!_fronting) await _log.DeleteBeforeAsync(segment);
            _firstLiveSegment = segment;
        }
        finally
        {
            _checkpointing = false;
        }
    }

    // Record: [-(segment count) - 1: int32][arrival UTC ticks: int64][segment ids][batch]. Records written before
    // arrival times were logged start with the plain count (never negative) and have no arrival field.
    private static byte[] Encode(List<Guid> segments, EventBatch batch)
    {
        var encoded = batch.CopyEncoded();
        const int header = 12;
        var payload = new byte[header + segments.Count * 16 + encoded.Length];
        BinaryPrimitives.WriteInt32LittleEndian(payload, -segments.Count - 1);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(4), batch.CreatedAt.UtcTicks);
        for (var i = 0; i < segments.Count; i++) segments[i].TryWriteBytes(payload.AsSpan(header + i * 16));
        encoded.CopyTo(payload.AsSpan(header + segments.Count * 16));
        return payload;
    }

    private (List<Guid> Segments, EventBatch Batch, DateTimeOffset ArrivedAt) Decode(byte[] payload)
    {
        var count = BinaryPrimitives.ReadInt32LittleEndian(payload);
        DateTimeOffset? arrivedAt = null;
        var header = 4;
        if (count < 0)
        {
            count = -count - 1;
            arrivedAt = new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(4)), TimeSpan.Zero);
            header = 12;
        }
        var segments = new List<Guid>(count);
        for (var i = 0; i < count; i++) segments.Add(new Guid(payload.AsSpan(header + i * 16, 16)));
        var batch = EventBatch.FromEncoded(payload[(header + count * 16)..], partition: Partition, createdAt: arrivedAt ?? default);
        // An old record is replayed as it was applied then: arriving with its latest event, nothing is clamped.
        return (segments, batch, arrivedAt ?? (batch.Count == 0 ? time.GetUtcNow() : batch.Events.Max(e => e.Timestamp)));
    }
}
