using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Routing;

/// <summary>
/// The rule-based router of one fronting partition (docs/architecture.md, Events, schemas and routing). It keeps a bounded memory of recent event
/// ids to drop re-sent events, routes each batch, and appends the results topic by topic, HIGH priority first.
/// A batch is acknowledged to the stream only after every append succeeded; on failure nothing is remembered, so
/// the redelivered batch is routed again.
/// </summary>
[ImplicitStreamSubscription(StreamNames.Fronting)]
public sealed class RouterGrain(
    RoutingRulesProvider rules,
    IOptions<RoutingOptions> routingOptions,
    IOptions<IngestOptions> ingestOptions,
    PipelineMetrics metrics,
    Keystone.Operations.DeadLetterStore deadLetters,
    IOptions<Keystone.Operations.FaultOptions> faults,
    IOptions<CheckpointOptions> checkpoints,
    IFrontingLog frontingLog,
    TimeProvider time,
    ILogger<RouterGrain> logger)
    : Grain, IRouterGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    private readonly Dictionary<string, IAsyncStream<EventBatch>> _outputs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _registeredTopics = new(StringComparer.Ordinal);
    // Reused by every routing call: its lists are consumed (copied into the messages) before the next call.
    private readonly RoutedBatch _routed = new();
    // Each topic's share of a delivery, reused likewise: emptied once its messages are built.
    private readonly Dictionary<string, SegmentBuffer> _buffers = new(StringComparer.Ordinal);
    private RecentIds<Guid>? _seen;
    private IStreamProvider? _provider;
    private int _partition;
    private long _batches, _events, _duplicates, _deliveries, _unrouted, _filtered, _rewound;

    private static readonly TimeSpan ReplayGathering = TimeSpan.FromMilliseconds(250);

    // The newest checkpoint barrier this activation put into its topics, and the replays it started (see Rewind).
    private long _lastBarrier;
    private readonly RouterReplays _replays = new();

    // With the fronting log: how far this router has routed it (null without the log).
    private FrontingReader? _reader;
    private int _failedRewinds;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        _provider = this.GetStreamProvider(StreamNames.Provider);
        if (routingOptions.Value.DedupeWindow > 0) _seen = new RecentIds<Guid>(routingOptions.Value.DedupeWindow);
        if (checkpoints.Value.Logging)
        {
            // Recovery: whatever the log holds past the last completed checkpoint may not have reached its consumers.
            _reader = new FrontingReader(frontingLog, _partition, await GrainFactory.GetGrain<ICheckpointCoordinatorGrain>(0).Covered(_partition));
            var head = await GrainFactory.GetGrain<IFrontingPartitionGrain>(_partition).Head();
            if (head > _reader.Position)
            {
                logger.LogInformation("Router {Partition} replays fronting positions {From} to {To} (after the last checkpoint)", _partition, _reader.Position + 1, head);
                await _reader.CatchUpAsync(head, Route);
            }
        }
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnNextAsync(IList<SequentialItem<EventBatch>> items) =>
        _reader is null ? Route([.. items.Select(i => i.Item)]) : _reader.DeliverAsync([.. items.Select(i => i.Item)], Route);

    public Task<long> Rewinds() => Task.FromResult(_replays.Started);

    public async Task<long> Rewind(long rewindsSeen)
    {
        if (_reader is null) return 0;
        if (_failedRewinds < faults.Value.FailedRouterRewinds)
        {
            _failedRewinds++;
            throw new InvalidOperationException($"router {_partition}: replay refused by Keystone:Faults:FailedRouterRewinds ({_failedRewinds} of {faults.Value.FailedRouterRewinds})");
        }
        // A replay started since the caller was ready has (not reentrant) finished, and served it.
        if (_replays.Started > rewindsSeen) return _replays.BarrierBefore;
        // Consumers that lost state together (a silo left) become ready within moments of each other: those that
        // read the count meanwhile are served by the one replay that starts after this pause.
        await Task.Delay(ReplayGathering, time);
        if (!_replays.Begin(rewindsSeen, _lastBarrier)) return _replays.BarrierBefore;
        var covered = await GrainFactory.GetGrain<ICheckpointCoordinatorGrain>(0).Covered(_partition);
        var head = await GrainFactory.GetGrain<IFrontingPartitionGrain>(_partition).Head();
        logger.LogWarning("Router {Partition} routes fronting positions {From} to {To} again for a consumer that lost state", _partition, covered + 1, head);
        var reader = new FrontingReader(frontingLog, _partition, covered);
        // Routed before: the router's memory of event ids must not take them for re-sent events.
        await reader.CatchUpAsync(head, batches => Route(batches, remember: false));
        _rewound += reader.Replayed;
        return _replays.BarrierBefore;
    }

    public async Task<long> Barrier(long checkpoint)
    {
        var position = _reader?.Position ?? 0;
        var barrier = EventBatch.CheckpointBarrier(checkpoint, _partition, position, time.GetUtcNow());
        foreach (var topic in CheckpointCoordinatorGrain.Consumers)
            await Output(topic).OnNextAsync(barrier);
        _lastBarrier = Math.Max(_lastBarrier, checkpoint);
        return position;
    }

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Fronting partition {Partition} reported a stream error", _partition);
        return Task.CompletedTask;
    }

    public Task<RouterStats> GetStats() =>
        Task.FromResult(new RouterStats(_partition, _batches, _events, _duplicates + (_reader?.Repeats ?? 0), _deliveries, _unrouted, _filtered, rules.Current.Rules.Hash, _reader?.Position ?? 0, (_reader?.Replayed ?? 0) + _rewound));

    // Routes every batch of a delivery, then appends one packed message per topic (not one per input batch): a
    // delivery of 16 fronting messages becomes ~14 appends instead of ~200. Each input batch's share of a topic is
    // its own segment, with an id derived from the input batch, so consumers can still recognise a repeat.
    private Task Route(IReadOnlyList<EventBatch> items) => Route(items, remember: true);

    private async Task Route(IReadOnlyList<EventBatch> items, bool remember)
    {
        var now = time.GetUtcNow();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var engine = rules.Current;
        var options = ingestOptions.Value;
        // Sized for every event of the delivery up front: grown one doubling at a time, each allocated about twice
        // its final size.
        var total = 0;
        foreach (var batch in items) total += batch.Count;
        var handled = new List<KeystoneEvent>(total);
        var outputs = new Dictionary<string, (Priority? Priority, SegmentBuffer Segments)>(StringComparer.Ordinal);
        var accepted = new List<Guid>(total);
        var inDelivery = new HashSet<Guid>(total);
        long events = 0, duplicates = 0, deliveries = 0, unrouted = 0, filtered = 0;

        void Add(string topic, Priority? priority, EventBatch source, List<int> sourceIndex, List<KeystoneEvent> routed, List<int> routedIndex)
        {
            if (!outputs.TryGetValue(topic, out var output))
            {
                if (!_buffers.TryGetValue(topic, out var buffer)) _buffers[topic] = buffer = new SegmentBuffer();
                buffer.Clear();
                outputs[topic] = output = (priority, buffer);
            }
            else if (priority < output.Priority)
                outputs[topic] = output = (priority, output.Segments);
            var items = output.Segments.Reserve(routed.Count);
            var inputs = source.Events;
            for (var i = 0; i < routed.Count; i++)
            {
                var index = sourceIndex[routedIndex[i]];
                // An event no transform touched is copied from the input message byte for byte.
                items[i] = ReferenceEquals(routed[i], inputs[index]) ? new BatchItem(routed[i], source, index) : new BatchItem(routed[i]);
            }
            output.Segments.Cut(source.BatchId, routed.Count, options.MaxEventsPerStreamMessage, options.MaxBytesPerStreamMessage);
        }

        foreach (var batch in items)
        {
            var all = batch.Events;
            var fresh = new List<KeystoneEvent>(all.Length);
            var freshIndex = new List<int>(all.Length);
            for (var i = 0; i < all.Length; i++)
            {
                var e = all[i];
                if ((remember && _seen is not null && _seen.Contains(e.EventId)) || !inDelivery.Add(e.EventId)) continue;
                fresh.Add(e);
                freshIndex.Add(i);
                accepted.Add(e.EventId);
            }
            events += all.Length;
            duplicates += all.Length - fresh.Count;
            if (fresh.Count == 0) continue;
            handled.AddRange(fresh);

            RoutedBatch routed;
            try
            {
                routed = RouteChecked(engine, fresh, now);
            }
            catch (Exception e)
            {
                // A rule or transform fails on some event: find those that fail on their own, park them in the
                // dead-letter store (replayed through ingest once fixed), route the rest. Never remembered as seen.
                logger.LogWarning(e, "Router {Partition}: routing a batch of {Count} failed; routing its events one by one", _partition, fresh.Count);
                var poison = new List<(KeystoneEvent Event, Exception Error)>();
                foreach (var single in fresh)
                {
                    try { RouteChecked(engine, [single], now); }
                    catch (Exception error) { poison.Add((single, error)); }
                }
                if (poison.Count == 0) throw;
                await deadLetters.ParkAsync("router", poison, attempts: 2, now, topic: null);
                metrics.DeadLettered("router", poison.Count);
                var bad = poison.Select(p => p.Event.EventId).ToHashSet();
                for (var i = fresh.Count - 1; i >= 0; i--)
                {
                    if (!bad.Contains(fresh[i].EventId)) continue;
                    fresh.RemoveAt(i);
                    freshIndex.RemoveAt(i);
                }
                accepted.RemoveAll(bad.Contains);
                handled.RemoveAll(h => bad.Contains(h.EventId));
                if (fresh.Count == 0) continue;
                routed = RouteChecked(engine, fresh, now);
            }
            foreach (var (topic, output) in routed.Topics) Add(topic, output.Priority, batch, freshIndex, output.Events, output.Indexes);
            if (routed.Unrouted.Count > 0) Add(StreamNames.Unrouted, null, batch, freshIndex, routed.Unrouted, routed.UnroutedIndexes);
            deliveries += routed.Deliveries;
            unrouted += routed.Unrouted.Count;
            filtered += routed.Filtered;
        }

        // Routed messages carry on the ingest time of their input (not the router's clock): consumers judge event
        // times against when events arrived (ClockSkew), the same way on a redelivery as the first time.
        var ingestedAt = ClockSkew.ArrivalOf(items, now);
        try
        {
            foreach (var tier in outputs.GroupBy(o => o.Value.Priority ?? Priority.Low).OrderBy(g => g.Key))
                await Task.WhenAll(tier.Select(o => Append(o.Key, o.Value.Priority, o.Value.Segments, ingestedAt)));
        }
        finally
        {
            // The messages own copies: the buffers let go of this delivery's events now, not at the next delivery.
            foreach (var (_, output) in outputs) output.Segments.Clear();
        }
        metrics.StageBatch("router", System.Diagnostics.Stopwatch.GetElapsedTime(started), handled, now);

        // Remember only what was delivered: a failed append leaves the batches to be redelivered and routed again.
        if (_seen is not null)
            foreach (var id in accepted) _seen.TryAdd(id);

        _batches += items.Count;
        _events += events;
        _duplicates += duplicates;
        _deliveries += deliveries;
        _unrouted += unrouted;
        _filtered += filtered;
        metrics.DuplicateAtRouter((int)duplicates);
        metrics.Unrouted((int)unrouted);
        metrics.Filtered((int)filtered);
    }

    private IAsyncStream<EventBatch> Output(string topic)
    {
        if (!_outputs.TryGetValue(topic, out var stream))
        {
            stream = _provider!.GetStream<EventBatch>(StreamId.Create(topic, StreamNames.PartitionKey(_partition)));
            _outputs[topic] = stream;
        }
        return stream;
    }

    private RoutedBatch RouteChecked(RoutingEngine engine, List<KeystoneEvent> events, DateTimeOffset now)
    {
        if (faults.Value.RouterPoisonMarker is { Length: > 0 } && events.FirstOrDefault(faults.Value.IsRouterPoison) is { } poison)
            throw new InvalidOperationException($"poison event {poison.EventId} (fault injection: Keystone:Faults:RouterPoisonMarker)");
        return engine.Route(events, _partition, now, _routed);
    }

    private async Task Append(string topic, Priority? priority, SegmentBuffer segments, DateTimeOffset ingestedAt)
    {
        var stream = Output(topic);
        if (_registeredTopics.Add(topic))
            await GrainFactory.GetGrain<ITopicDirectoryGrain>(0).Register(topic, priority?.ToString().ToUpperInvariant());

        var options = ingestOptions.Value;
        var count = 0;
        foreach (var message in StreamChunker.Pack(segments, _partition, ingestedAt, options.MaxEventsPerStreamMessage, options.MaxBytesPerStreamMessage))
        {
            await stream.OnNextAsync(message);
            count += message.Count;
        }
        metrics.Routed(topic, count);
    }
}
