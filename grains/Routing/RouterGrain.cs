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
/// The rule-based router of one fronting partition (seed §3.4, phase 2). It keeps a bounded memory of recent event
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
    TimeProvider time,
    ILogger<RouterGrain> logger)
    : Grain, IRouterGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    private readonly Dictionary<string, IAsyncStream<EventBatch>> _outputs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _registeredTopics = new(StringComparer.Ordinal);
    private RecentIds<Guid>? _seen;
    private IStreamProvider? _provider;
    private int _partition;
    private long _batches, _events, _duplicates, _deliveries, _unrouted, _filtered;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        _provider = this.GetStreamProvider(StreamNames.Provider);
        if (routingOptions.Value.DedupeWindow > 0) _seen = new RecentIds<Guid>(routingOptions.Value.DedupeWindow);
        return Task.CompletedTask;
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public async Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        foreach (var item in items) await Route(item.Item);
    }

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Fronting partition {Partition} reported a stream error", _partition);
        return Task.CompletedTask;
    }

    public Task<RouterStats> GetStats() =>
        Task.FromResult(new RouterStats(_partition, _batches, _events, _duplicates, _deliveries, _unrouted, _filtered, rules.Current.Rules.Hash));

    private async Task Route(EventBatch batch)
    {
        var fresh = new List<KeystoneEvent>(batch.Events.Length);
        foreach (var e in batch.Events)
            if (_seen is null || !_seen.Contains(e.EventId)) fresh.Add(e);
        var duplicates = batch.Events.Length - fresh.Count;

        var now = time.GetUtcNow();
        var routed = rules.Current.Route(fresh, _partition, now);

        foreach (var tier in routed.ByPriority)
            await Task.WhenAll(tier.Select(t => Append(t.Topic, batch.BatchId, t.Events, now, t.Priority)));
        if (routed.Unrouted.Count > 0)
            await Append(StreamNames.Unrouted, batch.BatchId, routed.Unrouted, now, null);

        // Remember only what was delivered: a failed append leaves the batch to be redelivered and routed again.
        if (_seen is not null)
            foreach (var e in fresh) _seen.TryAdd(e.EventId);

        _batches++;
        _events += batch.Events.Length;
        _duplicates += duplicates;
        _deliveries += routed.Deliveries;
        _unrouted += routed.Unrouted.Count;
        _filtered += routed.Filtered;
        metrics.DuplicateAtRouter(duplicates);
        metrics.Unrouted(routed.Unrouted.Count);
        metrics.Filtered(routed.Filtered);
    }

    private async Task Append(string topic, Guid batchId, List<KeystoneEvent> events, DateTimeOffset now, Priority? priority)
    {
        if (!_outputs.TryGetValue(topic, out var stream))
        {
            stream = _provider!.GetStream<EventBatch>(StreamId.Create(topic, StreamNames.PartitionKey(_partition)));
            _outputs[topic] = stream;
        }
        if (_registeredTopics.Add(topic))
            await GrainFactory.GetGrain<ITopicDirectoryGrain>(0).Register(topic, priority?.ToString().ToUpperInvariant());

        var options = ingestOptions.Value;
        var index = 0;
        foreach (var chunk in StreamChunker.Chunk(events, options.MaxEventsPerStreamMessage, options.MaxBytesPerStreamMessage))
            await stream.OnNextAsync(new EventBatch(StreamChunker.ChunkId(batchId, index++), _partition, now, chunk));
        metrics.Routed(topic, events.Count);
    }
}
