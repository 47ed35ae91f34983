using System.Diagnostics.Metrics;

namespace Keystone.Aggregation;

/// <summary>Checkpoint counters: blob writes, events per write (the group-commit factor), write latency, conflicts.</summary>
public sealed class CheckpointMetrics : IDisposable
{
    public const string MeterName = "Keystone.Checkpoints";
    private readonly Meter _meter;
    private readonly Counter<long> _writes;
    private readonly Counter<long> _events;
    private readonly Counter<long> _conflicts;
    private readonly Histogram<double> _latency;
    private long _writesTotal, _eventsTotal, _conflictsTotal;
    private readonly LatencyHistogram _latencyTotal = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Writes, long Events)> _byKind = [];

    /// <param name="meterFactory">The host's: its meter is that host's own, so several hosts in one process (tests)
    /// do not share or end each other's series.</param>
    public CheckpointMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _writes = _meter.CreateCounter<long>("keystone.checkpoint.writes", "{write}", "Grain state writes to blob storage.");
        _events = _meter.CreateCounter<long>("keystone.checkpoint.events", "{event}", "Events made durable by those writes.");
        _conflicts = _meter.CreateCounter<long>("keystone.checkpoint.conflicts", "{conflict}", "Writes refused by an ETag conflict and redone.");
        _latency = _meter.CreateHistogram<double>("keystone.checkpoint.latency", "ms", "Time of one state write.");
    }

    public void Written(string kind, int events, TimeSpan elapsed)
    {
        var tag = new KeyValuePair<string, object?>("grain", kind);
        _writes.Add(1, tag);
        _events.Add(events, tag);
        _latency.Record(elapsed.TotalMilliseconds, tag);
        Interlocked.Increment(ref _writesTotal);
        Interlocked.Add(ref _eventsTotal, events);
        lock (_lock)
        {
            _latencyTotal.Record(elapsed);
            var (w, e) = _byKind.GetValueOrDefault(kind);
            _byKind[kind] = (w + 1, e + events);
        }
    }

    public void Conflict()
    {
        _conflicts.Add(1);
        Interlocked.Increment(ref _conflictsTotal);
    }

    /// <summary>Writes and events per kind of writer (user, video, profile, log, operator).</summary>
    public IReadOnlyDictionary<string, (long Writes, long Events)> ByKind()
    {
        lock (_lock) return _byKind.ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    public (long Writes, long Events, long Conflicts, LatencySnapshot Latency) Snapshot()
    {
        lock (_lock) return (Interlocked.Read(ref _writesTotal), Interlocked.Read(ref _eventsTotal), Interlocked.Read(ref _conflictsTotal), _latencyTotal.Snapshot());
    }

    public void Dispose() => _meter.Dispose();
}
