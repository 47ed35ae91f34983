using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Topics;

/// <summary>Checkpointed tap counters. The recent-batch ids are saved with the counts so a redelivered message
/// is recognised across a restart too.</summary>
public sealed class TapState
{
    public long Delivered { get; set; }
    public long Duplicates { get; set; }
    public long Sequence { get; set; }
    public DateTimeOffset? LastDeliveryAt { get; set; }
    public List<TappedEvent> Recent { get; set; } = [];
    public List<Guid> RecentBatches { get; set; } = [];
    public LatencySnapshot Lag { get; set; } = LatencySnapshot.Empty;
}

/// <summary>
/// Implicitly subscribed to every topic except the fronting one and private streams ("_" prefix); one activation per (topic, partition). It counts
/// what is delivered, ignores a stream message it has already counted (durable queues redeliver), keeps the newest
/// events for inspection and measures lag. Counters are checkpointed on a timer and on deactivation; a tap is an
/// observer, so it acknowledges deliveries without waiting for its own checkpoint.
/// </summary>
[RegexImplicitStreamSubscription(StreamNames.TappedNamespaces, StreamIdMapper = TopicStreamIdMapper.Name)]
public sealed class TopicTapGrain(
    [PersistentState("tap", StorageNames.State)] IPersistentState<TapState> state,
    IOptions<TapOptions> options,
    TimeProvider time,
    ILogger<TopicTapGrain> logger)
    : Grain, ITopicTapGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    private readonly Queue<TappedEvent> _recent = new();
    private readonly LatencyHistogram _lag = new();
    private RecentIds<Guid> _batches = null!;
    private string _topic = "";
    private int _partition;
    private bool _dirty;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var slash = key.LastIndexOf('/');
        _topic = key[..slash];
        _partition = int.Parse(key[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);

        _batches = new RecentIds<Guid>(options.Value.RememberedBatches);
        foreach (var id in state.State.RecentBatches) _batches.TryAdd(id);
        foreach (var e in state.State.Recent) _recent.Enqueue(e);
        _lag.Add(state.State.Lag);

        var interval = options.Value.CheckpointInterval;
        this.RegisterGrainTimer(Checkpoint, new GrainTimerCreationOptions(interval, interval));
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_dirty) await Checkpoint(cancellationToken);
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        var now = time.GetUtcNow();
        var nowTicks = now.UtcTicks;
        var keep = options.Value.RecentEvents;
        var s = state.State;
        foreach (var item in items)
        {
            var batch = item.Item;
            // Lag needs only the timestamps, and the recent list only the last few events: read just that much.
            var ticks = batch.UtcTicks();
            var firstKept = int.MaxValue;
            List<(int Start, int Count)>? accepted = null;
            foreach (var (id, start, count) in batch.SegmentRanges())
            {
                if (!_batches.TryAdd(id))
                {
                    s.Duplicates += count;
                    continue;
                }
                for (var i = start; i < start + count; i++) _lag.Record((nowTicks - ticks[i]) / TimeSpan.TicksPerMicrosecond);
                s.Delivered += count;
                s.LastDeliveryAt = now;
                (accepted ??= []).Add((start, count));
                firstKept = Math.Min(firstKept, start);
            }
            if (keep == 0 || accepted is null) continue;

            // Decode from the first event that can still be among the newest `keep`.
            var total = accepted.Sum(a => a.Count);
            var skip = Math.Max(0, total - keep);
            var from = firstKept;
            foreach (var (start, count) in accepted)
            {
                if (skip < count)
                {
                    from = start + skip;
                    break;
                }
                skip -= count;
            }
            var decoded = batch.EventsFrom(from);
            foreach (var (start, count) in accepted)
            {
                for (var i = Math.Max(start, from); i < start + count; i++)
                {
                    _recent.Enqueue(new TappedEvent(++s.Sequence, now, batch.Partition, decoded[i - from]));
                    if (_recent.Count > keep) _recent.Dequeue();
                }
            }
        }
        _dirty = true;
        return Task.CompletedTask;
    }

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on topic {Topic} partition {Partition}", _topic, _partition);
        return Task.CompletedTask;
    }

    public Task<TapStats> GetStats()
    {
        var s = state.State;
        return Task.FromResult(new TapStats(_topic, _partition, s.Delivered, s.Duplicates, s.LastDeliveryAt, _lag.Snapshot()));
    }

    public Task<IReadOnlyList<TappedEvent>> GetRecent(int limit, long afterSequence = 0)
    {
        IReadOnlyList<TappedEvent> result = _recent.Where(e => e.Sequence > afterSequence).TakeLast(Math.Max(0, limit)).ToArray();
        return Task.FromResult(result);
    }

    public async Task Reset()
    {
        _recent.Clear();
        _lag.Clear();
        _batches.Clear();
        state.State = new TapState();
        await state.WriteStateAsync();
        _dirty = false;
    }

    private async Task Checkpoint(CancellationToken cancellationToken)
    {
        if (!_dirty) return;
        var s = state.State;
        s.Recent = [.. _recent];
        // The newest ids only: enough to recognise a redelivery after a restart without a megabyte per checkpoint.
        s.RecentBatches = [.. _batches.InOrder().TakeLast(512)];
        s.Lag = _lag.Snapshot();
        try
        {
            await state.WriteStateAsync(cancellationToken);
            _dirty = false;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The next tick retries; a tap's counters are observability, not the pipeline's source of truth.
            logger.LogWarning("Checkpoint of tap {Topic}/{Partition} failed: {Error}", _topic, _partition, e.Message);
        }
    }
}
