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

    private readonly Meter _meter;
    private readonly Counter<long> _published, _rejected, _retried, _deadLettered;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _flushLatency;
    private readonly LatencyHistogram _latency = new();
    private readonly Lock _lock = new();
    private long _publishedTotal, _rejectedTotal, _retriedTotal, _deadLetteredTotal, _batches, _batchEvents;
    private int _maxBatch;

    public PublisherMetrics(Func<int> queueDepth)
    {
        QueueDepth = queueDepth;
        _meter = new Meter(MeterName);
        _published = _meter.CreateCounter<long>("keystone.publisher.published", "{event}", "Events the cluster accepted.");
        _rejected = _meter.CreateCounter<long>("keystone.publisher.rejected", "{event}", "Events refused by local validation or by the cluster.");
        _retried = _meter.CreateCounter<long>("keystone.publisher.retried", "{attempt}", "Batch send attempts that were retried.");
        _deadLettered = _meter.CreateCounter<long>("keystone.publisher.dead_lettered", "{event}", "Events written to the dead-letter file.");
        _batchSize = _meter.CreateHistogram<int>("keystone.publisher.batch_size", "{event}", "Events per sent batch.");
        _flushLatency = _meter.CreateHistogram<double>("keystone.publisher.flush_latency", "ms", "First event queued to batch acknowledged.");
        _meter.CreateObservableGauge("keystone.publisher.queue_depth", () => QueueDepth(), "{event}", "Events waiting to be sent.");
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

    public void Dispose() => _meter.Dispose();
}
