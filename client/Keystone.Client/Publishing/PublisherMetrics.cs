using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Keystone.Client.Publishing;

/// <summary>A point-in-time copy of the publisher's counters.</summary>
public sealed record PublisherSnapshot(
    long Published,
    long Rejected,
    long Retried,
    long DeadLettered,
    int QueueDepth,
    long Batches,
    double AverageBatchSize,
    int MaxBatchSize,
    LatencySnapshot FlushLatency);

/// <summary>
/// Publisher counters, also exported through <see cref="System.Diagnostics.Metrics"/> (meter "Keystone.Client"):
/// published (accepted by the cluster), rejected (locally or by the cluster), retried (attempts), dead-lettered,
/// queue depth, batch sizes and flush latency (first event queued → batch acknowledged).
/// </summary>
public sealed class PublisherMetrics : IDisposable
{
    public const string MeterName = "Keystone.Client";

    // One meter for the process, never disposed, shared by every publisher in it (the way .NET's own libraries meter
    // HttpClient). A meter per publisher would not do: exporters merge same-named instruments into one series, and
    // disposing any one publisher's meter ends that series for all the others.
    private static readonly Meter SharedMeter = new(MeterName);
    private static readonly Counter<long> PublishedCounter = SharedMeter.CreateCounter<long>("keystone.publisher.published", "{event}", "Events the cluster accepted.");
    private static readonly Counter<long> RejectedCounter = SharedMeter.CreateCounter<long>("keystone.publisher.rejected", "{event}", "Events refused by local validation or by the cluster.");
    private static readonly Counter<long> RetriedCounter = SharedMeter.CreateCounter<long>("keystone.publisher.retried", "{attempt}", "Batch send attempts that were retried.");
    private static readonly Counter<long> DeadLetteredCounter = SharedMeter.CreateCounter<long>("keystone.publisher.dead_lettered", "{event}", "Events written to the dead-letter file.");
    private static readonly Histogram<int> BatchSizeHistogram = SharedMeter.CreateHistogram<int>("keystone.publisher.batch_size", "{event}", "Events per sent batch.");
    private static readonly Histogram<double> FlushLatencyHistogram = SharedMeter.CreateHistogram<double>("keystone.publisher.flush_latency", "ms", "First event queued to batch acknowledged.");
    private static readonly ConcurrentDictionary<PublisherMetrics, byte> Live = new(ReferenceEqualityComparer.Instance);
    private static readonly ObservableGauge<int> QueueDepthGauge = SharedMeter.CreateObservableGauge("keystone.publisher.queue_depth", () => Live.Keys.Sum(p => p.QueueDepth()), "{event}", "Events waiting to be sent, over the process's open publishers.");

    private readonly Counter<long> _published = PublishedCounter, _rejected = RejectedCounter, _retried = RetriedCounter, _deadLettered = DeadLetteredCounter;
    private readonly Histogram<int> _batchSize = BatchSizeHistogram;
    private readonly Histogram<double> _flushLatency = FlushLatencyHistogram;
    private readonly LatencyHistogram _latency = new();
    private readonly Lock _lock = new();
    private long _publishedTotal, _rejectedTotal, _retriedTotal, _deadLetteredTotal, _batches, _batchEvents;
    private int _maxBatch;

    public PublisherMetrics(Func<int> queueDepth)
    {
        QueueDepth = queueDepth;
        _ = QueueDepthGauge;
        Live.TryAdd(this, 0);
    }

    public Func<int> QueueDepth { get; }

    public void Published(int n)
    {
        _published.Add(n);
        Interlocked.Add(ref _publishedTotal, n);
    }

    public void Rejected(int n)
    {
        _rejected.Add(n);
        Interlocked.Add(ref _rejectedTotal, n);
    }

    public void Retried()
    {
        _retried.Add(1);
        Interlocked.Increment(ref _retriedTotal);
    }

    public void DeadLettered(int n)
    {
        _deadLettered.Add(n);
        Interlocked.Add(ref _deadLetteredTotal, n);
    }

    public void BatchSent(int size, TimeSpan latency)
    {
        _batchSize.Record(size);
        _flushLatency.Record(latency.TotalMilliseconds);
        lock (_lock)
        {
            _batches++;
            _batchEvents += size;
            _maxBatch = Math.Max(_maxBatch, size);
            _latency.Record(latency);
        }
    }

    public PublisherSnapshot Snapshot()
    {
        lock (_lock)
        {
            return new PublisherSnapshot(
                Interlocked.Read(ref _publishedTotal),
                Interlocked.Read(ref _rejectedTotal),
                Interlocked.Read(ref _retriedTotal),
                Interlocked.Read(ref _deadLetteredTotal),
                QueueDepth(),
                _batches,
                _batches == 0 ? 0 : (double)_batchEvents / _batches,
                _maxBatch,
                _latency.Snapshot());
        }
    }

    /// <summary>Stops counting this publisher's queue in the shared gauge; what it counted stays counted.</summary>
    public void Dispose() => Live.TryRemove(this, out _);
}
