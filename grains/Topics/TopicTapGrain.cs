using Keystone.Ingest;
using Keystone.Pipeline;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Topics;

/// <summary>
/// Implicitly subscribed to every topic except the fronting one and private streams ("_" prefix); one activation per (topic, partition). It counts
/// what is delivered, ignores a stream message it has already counted (durable queues redeliver), keeps the newest
/// events for inspection and measures lag. A tap is an observer, not the pipeline's record, so it keeps all of this in
/// memory and writes nothing to storage: counts start again from zero when its activation does. (Persisting them
/// cost 168 blob rewrites of up to 160 KB every 5 s, the emulator's busiest work at the quick start's 200 events/s.)
/// Kept alive so that an idle topic does not forget its counts when idle activations are collected.
/// </summary>
[KeepAlive]
[RegexImplicitStreamSubscription(StreamNames.TappedNamespaces, StreamIdMapper = TopicStreamIdMapper.Name)]
public sealed class TopicTapGrain(
    IOptions<TapOptions> options,
    TimeProvider time,
    Keystone.Pipeline.PipelineMetrics metrics,
    ILogger<TopicTapGrain> logger)
    : Grain, ITopicTapGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    // Structs, not TappedEvent records: a tap sees every delivery of its topic, and only the few that are read need a record.
    private readonly Queue<(long Sequence, DateTimeOffset At, int Partition, Keystone.Events.KeystoneEvent Event)> _recent = new();
    private readonly LatencyHistogram _lag = new();
    private readonly RecentLatency _recentLag = new(TimeSpan.FromSeconds(30));
    private RecentIds<Guid> _batches = null!;
    private string _topic = "";
    private int _partition;
    private long _delivered, _duplicates, _sequence;
    private DateTimeOffset? _lastDeliveryAt;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var slash = key.LastIndexOf('/');
        _topic = key[..slash];
        _partition = int.Parse(key[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);

        _batches = new RecentIds<Guid>(options.Value.RememberedBatches);
        return Task.CompletedTask;
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        var now = time.GetUtcNow();
        var nowTicks = now.UtcTicks;
        _recentLag.Advance(now);
        var keep = options.Value.RecentEvents;
        foreach (var item in items)
        {
            var batch = item.Item;
            // Lag needs only the timestamps, and the recent list only the last few events: read just that much. A
            // batch passed by reference has its events already: their timestamps are read in place, not copied out.
            var inPlace = batch.DecodedEvents;
            var ticks = inPlace is null ? batch.UtcTicks() : null;
            var firstKept = int.MaxValue;
            List<(int Start, int Count)>? accepted = null;
            foreach (var (id, start, count) in batch.SegmentRanges())
            {
                if (!_batches.TryAdd(id))
                {
                    _duplicates += count;
                    continue;
                }
                for (var i = start; i < start + count; i++)
                {
                    var micros = (nowTicks - (inPlace is null ? ticks![i] : inPlace[i].Timestamp.UtcTicks)) / TimeSpan.TicksPerMicrosecond;
                    _lag.Record(micros);
                    _recentLag.Record(micros);
                    if ((i - start) % Keystone.Pipeline.PipelineMetrics.LagSampleStride == 0) metrics.TopicLag(_topic, micros / 1000.0);
                }
                _delivered += count;
                _lastDeliveryAt = now;
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
            var (decoded, offset) = inPlace is null ? (batch.EventsFrom(from), from) : (inPlace, 0);
            foreach (var (start, count) in accepted)
            {
                for (var i = Math.Max(start, from); i < start + count; i++)
                {
                    _recent.Enqueue((++_sequence, now, batch.Partition, decoded[i - offset]));
                    if (_recent.Count > keep) _recent.Dequeue();
                }
            }
        }
        return Task.CompletedTask;
    }

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on topic {Topic} partition {Partition}", _topic, _partition);
        return Task.CompletedTask;
    }

    public Task<TapStats> GetStats() =>
        Task.FromResult(new TapStats(_topic, _partition, _delivered, _duplicates, _lastDeliveryAt, _lag.Snapshot(), _recentLag.Snapshot(time.GetUtcNow())));

    public Task<IReadOnlyList<TappedEvent>> GetRecent(int limit, long afterSequence = 0)
    {
        IReadOnlyList<TappedEvent> result = _recent.Where(e => e.Sequence > afterSequence).TakeLast(Math.Max(0, limit))
            .Select(e => new TappedEvent(e.Sequence, e.At, e.Partition, e.Event)).ToArray();
        return Task.FromResult(result);
    }

    public Task Reset()
    {
        _recent.Clear();
        _lag.Clear();
        _recentLag.Clear();
        _batches.Clear();
        _delivered = _duplicates = _sequence = 0;
        _lastDeliveryAt = null;
        return Task.CompletedTask;
    }
}
