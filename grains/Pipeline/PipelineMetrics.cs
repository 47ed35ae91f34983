using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Keystone.Ingest;

namespace Keystone.Pipeline;

/// <summary>
/// Counters for every stage, published through <see cref="System.Diagnostics.Metrics"/> (meter "Keystone.Pipeline")
/// and also kept as totals that <c>GET /v1/stats</c> reports for this silo.
/// </summary>
/// <summary>What the pipeline measures beyond its counters. Section <c>Keystone:Metrics</c>.</summary>
public sealed class MetricsOptions
{
    public const string Section = "Keystone:Metrics";

    /// <summary>Per-event lag and per-batch processing histograms by stage (what the alert rules read). Off saves their cost.</summary>
    public bool StageHistograms { get; set; } = true;
}

public sealed class PipelineMetrics : IDisposable
{
    public const string MeterName = "Keystone.Pipeline";

    private readonly Meter _meter;
    private readonly Counter<long> _ingested;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _duplicates;
    private readonly Counter<long> _routed;
    private readonly Counter<long> _unrouted;
    private readonly Counter<long> _filtered;
    private readonly Counter<long> _badBodies;
    private readonly Counter<long> _deadLettered;
    private readonly Counter<long> _deadLettersNotKept;
    private readonly Counter<long> _clockSkewed;
    private readonly Histogram<long> _batchSize;
    private readonly Histogram<double> _lag;
    private readonly Histogram<double> _processing;
    private readonly Histogram<double> _topicLag;

    // The same two measures kept in process per stage for the alert rules, emptied at every evaluation.
    private readonly Lock _windowLock = new();
    private Dictionary<string, (LatencyHistogram Lag, LatencyHistogram Processing)> _window = new(StringComparer.Ordinal);

    private long _ingestedTotal, _rejectedTotal, _duplicatesInBatchTotal, _duplicatesAtRouterTotal, _routedTotal, _unroutedTotal, _filteredTotal, _badBodiesTotal, _batchesTotal;
    private readonly ConcurrentDictionary<string, long> _rejectedByField = new(StringComparer.Ordinal);

    private readonly bool _stageHistograms = true;

    /// <summary>One event in this many is measured for lag.</summary>
    public const int LagSampleStride = 16;

    public PipelineMetrics(IMeterFactory? meterFactory = null, Microsoft.Extensions.Options.IOptions<MetricsOptions>? options = null)
    {
        _stageHistograms = options?.Value.StageHistograms ?? true;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _ingested = _meter.CreateCounter<long>("keystone.ingest.events", "{event}", "Events accepted at ingest and appended to the fronting topic.");
        _rejected = _meter.CreateCounter<long>("keystone.ingest.rejected", "{event}", "Events refused at ingest, by field.");
        _duplicates = _meter.CreateCounter<long>("keystone.duplicates", "{event}", "Repeated events dropped, by stage.");
        _deadLettered = _meter.CreateCounter<long>("keystone.dead_letters", "{event}", "Events sent to the dead-letter store after failing processing, by stage.");
        _deadLettersNotKept = _meter.CreateCounter<long>("keystone.dead_letters.not_kept", "{event}",
            "Refused events the dead-letter store did not keep in time (Keystone:DeadLetters:KeepTimeout) or at all; each is logged, and its producer had the refusal.");
        _clockSkewed = _meter.CreateCounter<long>("keystone.clock_skewed", "{event}", "Events stamped further ahead of their arrival than Keystone:Ingest:MaxClockSkew, restamped at arrival, by stage.");
        _routed = _meter.CreateCounter<long>("keystone.router.delivered", "{event}", "Events appended to target topics.");
        _unrouted = _meter.CreateCounter<long>("keystone.router.unrouted", "{event}", "Events that matched no routing rule.");
        _filtered = _meter.CreateCounter<long>("keystone.router.filtered", "{event}", "(event, destination) pairs held back by a filter transform.");
        _badBodies = _meter.CreateCounter<long>("keystone.ingest.bad_requests", "{request}", "Request bodies refused as a whole (malformed, too large).");
        _batchSize = _meter.CreateHistogram<long>("keystone.ingest.batch_size", "{event}", "Events per ingest batch.");
        _lag = _meter.CreateHistogram<double>("keystone.event.lag", "ms", "Now minus event time when a stage handles an event, by stage (one event in 16 sampled).");
        _processing = _meter.CreateHistogram<double>("keystone.stage.processing", "ms", "Time a stage takes for one batch, by stage.");
        _topicLag = _meter.CreateHistogram<double>("keystone.topic.lag", "ms", "Now minus event time when a topic's tap receives an event, by topic (one event in 16 sampled).");
    }

    /// <summary>Records a batch handled by a stage: how long it took, and how old each of its events was.</summary>
    public void StageBatch(string stage, TimeSpan took, IReadOnlyList<Events.KeystoneEvent> events, DateTimeOffset now)
    {
        if (!_stageHistograms) return;
        var tag = new KeyValuePair<string, object?>("stage", stage);
        _processing.Record(took.TotalMilliseconds, tag);
        // Lag is sampled, one event in LagSampleStride (each sample weighing that many in the in-process window): on the
        // hot path a record per event per stage cost about 8 % of throughput.
        lock (_windowLock)
        {
            if (!_window.TryGetValue(stage, out var h)) _window[stage] = h = (new LatencyHistogram(), new LatencyHistogram());
            h.Processing.Record((long)took.TotalMicroseconds);
            var nowTicks = now.UtcTicks;
            for (var i = 0; i < events.Count; i += LagSampleStride)
            {
                var micros = (nowTicks - events[i].Timestamp.UtcTicks) / TimeSpan.TicksPerMicrosecond;
                h.Lag.Record(micros, Math.Min(LagSampleStride, events.Count - i));
                _lag.Record(micros / 1000.0, tag);
            }
        }
    }

    /// <summary>Per stage, the lag and processing-time histograms since the previous call.</summary>
    public IReadOnlyDictionary<string, (LatencySnapshot Lag, LatencySnapshot Processing)> TakeStageWindow()
    {
        Dictionary<string, (LatencyHistogram Lag, LatencyHistogram Processing)> taken;
        lock (_windowLock)
        {
            taken = _window;
            _window = new Dictionary<string, (LatencyHistogram, LatencyHistogram)>(StringComparer.Ordinal);
        }
        return taken.ToDictionary(p => p.Key, p => (p.Value.Lag.Snapshot(), p.Value.Processing.Snapshot()), StringComparer.Ordinal);
    }

    public Meter Meter => _meter;

    private readonly Lock _receivedLock = new();

    /// <summary>What one ingest request brought: accepted events (in so many stream messages) and refused ones.</summary>
    public void Received(int events, int batches, IReadOnlyList<EventRejection> rejections)
    {
        if (events > 0)
        {
            _ingested.Add(events);
            _batchSize.Record(events);
        }
        foreach (var r in rejections) _rejected.Add(1, new KeyValuePair<string, object?>("field", FieldKey(r.Field)));
        lock (_receivedLock)
        {
            _ingestedTotal += events;
            _batchesTotal += batches;
            _rejectedTotal += rejections.Count;
            foreach (var r in rejections) _rejectedByField.AddOrUpdate(FieldKey(r.Field), 1, (_, n) => n + 1);
        }
    }

    // Key by the envelope part only, so hostile payload field names cannot blow up the tag cardinality.
    private static string FieldKey(string field) => field.StartsWith("payload", StringComparison.Ordinal) ? "payload" : field.Length > 32 ? "other" : field;

    public void DeadLettered(string stage, int count)
    {
        _deadLettered.Add(count, new KeyValuePair<string, object?>("stage", stage));
    }

    public void ClockSkewed(string stage, int count)
    {
        _clockSkewed.Add(count, new KeyValuePair<string, object?>("stage", stage));
    }

    public void DuplicateInBatch(int count)
    {
        if (count == 0) return;
        _duplicates.Add(count, new KeyValuePair<string, object?>("stage", "ingest"));
        Interlocked.Add(ref _duplicatesInBatchTotal, count);
    }

    public void DuplicateAtRouter(int count)
    {
        if (count == 0) return;
        _duplicates.Add(count, new KeyValuePair<string, object?>("stage", "router"));
        Interlocked.Add(ref _duplicatesAtRouterTotal, count);
    }

    /// <summary>A topic's delivery lag (now − event time), for dashboards per topic; the caller samples one event in <see cref="LagSampleStride"/>.</summary>
    public void TopicLag(string topic, double milliseconds)
    {
        if (_stageHistograms) _topicLag.Record(milliseconds, new KeyValuePair<string, object?>("topic", topic));
    }

    public void Routed(string topic, int count)
    {
        _routed.Add(count, new KeyValuePair<string, object?>("topic", topic));
        Interlocked.Add(ref _routedTotal, count);
    }

    public void Unrouted(int count)
    {
        if (count == 0) return;
        _unrouted.Add(count);
        Interlocked.Add(ref _unroutedTotal, count);
    }

    public void Filtered(int count)
    {
        if (count == 0) return;
        _filtered.Add(count);
        Interlocked.Add(ref _filteredTotal, count);
    }

    public void DeadLettersNotKept(int count) => _deadLettersNotKept.Add(count);

    public void BadBody()
    {
        _badBodies.Add(1);
        Interlocked.Increment(ref _badBodiesTotal);
    }

    public PipelineTotals Snapshot()
    {
        long ingested, batches, rejected;
        Dictionary<string, long> byField;
        lock (_receivedLock)
        {
            (ingested, batches, rejected) = (_ingestedTotal, _batchesTotal, _rejectedTotal);
            byField = _rejectedByField.ToDictionary(kv => kv.Key, kv => kv.Value);
        }
        return new(ingested, batches, rejected, byField,
            Interlocked.Read(ref _duplicatesInBatchTotal),
            Interlocked.Read(ref _duplicatesAtRouterTotal),
            Interlocked.Read(ref _routedTotal),
            Interlocked.Read(ref _unroutedTotal),
            Interlocked.Read(ref _filteredTotal),
            Interlocked.Read(ref _badBodiesTotal));
    }

    public void Dispose() => _meter.Dispose();
}

[GenerateSerializer, Immutable]
public sealed record PipelineTotals(
    [property: Id(0)] long Ingested,
    [property: Id(1)] long IngestBatches,
    [property: Id(2)] long Rejected,
    [property: Id(3)] Dictionary<string, long> RejectedByField,
    [property: Id(4)] long DuplicatesInBatch,
    [property: Id(5)] long DuplicatesAtRouter,
    [property: Id(6)] long Routed,
    [property: Id(7)] long Unrouted,
    [property: Id(8)] long Filtered,
    [property: Id(9)] long BadRequests);
