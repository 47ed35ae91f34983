using Orleans.Runtime;
using Orleans.Storage;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Keystone.Aggregation;

/// <summary>Checkpoint counters: blob writes, events per write (the group-commit factor), write latency, conflicts.</summary>
public sealed class CheckpointMetrics : IDisposable
{
    public const string MeterName = "Keystone.Checkpoints";
    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _writes;
    private readonly Counter<long> _events;
    private readonly Counter<long> _conflicts;
    private readonly Histogram<double> _latency;
    private long _writesTotal, _eventsTotal, _conflictsTotal;
    private readonly LatencyHistogram _latencyTotal = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Writes, long Events)> _byKind = [];

    public CheckpointMetrics()
    {
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

/// <summary>
/// Writes an entity grain's state on demand (the operators' checkpoint barrier, a size bound, deactivation), many
/// applied events per write. It keeps nothing of what was applied but a count: the inputs themselves are in the
/// fronting log (or the operator's log) until a checkpoint covers them. When the write finds that another activation
/// wrote meanwhile (Orleans' <see cref="InconsistentStateException"/>), this activation's memory is stale: the
/// exception is let through, Orleans deactivates the activation, and the operator, seeing the grain answer from a new
/// activation, replays what the lost one had applied since the last checkpoint (de-duplicated by event id).
/// </summary>
internal sealed class StateCheckpointer<TState>(
    IPersistentState<TState> storage,
    string kind,
    CheckpointMetrics metrics,
    ILogger logger) where TState : class, new()
{
    private bool _dirty;
    private int _events;
    private Task? _writing;

    public bool Dirty => _dirty;
    public int PendingEvents => _events;

    /// <summary>Something changed (<paramref name="events"/> applied events, or none: fired windows, settings).</summary>
    public void Record(int events)
    {
        _dirty = true;
        _events += events;
    }

    /// <summary>Writes if anything changed. <paramref name="prepare"/> copies in-memory structures into the state.</summary>
    /// <remarks>
    /// Safe to call from an interleaved grain method: one write runs at a time, and changes recorded while a write is
    /// in flight stay pending for the next one. The storage serialises the state synchronously when the write starts,
    /// so a write covers at least every change recorded before it began.
    /// </remarks>
    public async Task WriteAsync(Action prepare)
    {
        while (_writing is { IsCompleted: false } running)
        {
            try { await running; }
            catch (Exception) { /* that caller sees the failure; this one writes afresh below */ }
        }
        if (!Dirty) return;
        var write = Write(prepare);
        _writing = write;
        try { await write; }
        finally { if (_writing == write) _writing = null; }
    }

    private async Task Write(Action prepare)
    {
        prepare();
        var events = _events;
        _dirty = false;
        var clock = Stopwatch.StartNew();
        try
        {
            await storage.WriteStateAsync();
        }
        catch (InconsistentStateException e)
        {
            metrics.Conflict();
            logger.LogWarning("{Kind} state was written by another activation ({Message}); this one is stale and deactivates, and its operator replays", kind, e.Message);
            _dirty = true;
            throw;
        }
        catch
        {
            _dirty = true;
            throw;
        }
        metrics.Written(kind, events, clock.Elapsed);
        _events -= events;
    }
}
