using Orleans.Runtime;
using Orleans.Storage;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Keystone.Aggregation;

/// <summary>
/// Writes an entity grain's state on demand (the operators' checkpoint barrier, a size bound, deactivation), many
/// applied events per write. It keeps the inputs applied since the last write so that an ETag conflict (another
/// activation wrote meanwhile) is resolved by re-reading the state and applying them again, which de-duplication makes
/// safe, instead of losing them.
/// </summary>
internal sealed class StateCheckpointer<TState, TInput>(
    IPersistentState<TState> storage,
    string kind,
    CheckpointMetrics metrics,
    ILogger logger) where TState : class, new()
{
    private readonly List<TInput> _unflushed = [];
    private int _events;
    private Task? _writing;

    public bool Dirty => _unflushed.Count > 0;
    public int PendingEvents => _events;

    public void Record(TInput input, int events)
    {
        _unflushed.Add(input);
        _events += events;
    }

    /// <summary>Writes if anything changed. <paramref name="prepare"/> copies in-memory structures into the state;
    /// <paramref name="rebuild"/> is called with freshly read state after a conflict and returns how to re-apply an input.</summary>
    /// <remarks>
    /// Safe to call from an interleaved grain method: one write runs at a time, and inputs recorded while a write is in
    /// flight stay pending for the next one. The storage serialises the state synchronously when the write starts, so a
    /// write covers at least every input recorded before it began.
    /// </remarks>
    public async Task WriteAsync(Action prepare, Func<TState, Action<TInput>> rebuild)
    {
        while (_writing is { IsCompleted: false } running)
        {
            try { await running; }
            catch (Exception) { /* that caller sees the failure; this one writes afresh below */ }
        }
        if (!Dirty) return;
        var write = Write(prepare, rebuild);
        _writing = write;
        try { await write; }
        finally { if (_writing == write) _writing = null; }
    }

    private async Task Write(Action prepare, Func<TState, Action<TInput>> rebuild)
    {
        for (var attempt = 1; ; attempt++)
        {
            prepare();
            var covered = _unflushed.Count;
            var events = _events;
            var clock = Stopwatch.StartNew();
            try
            {
                await storage.WriteStateAsync();
                metrics.Written(kind, events, clock.Elapsed);
                _unflushed.RemoveRange(0, covered);
                _events -= events;
                return;
            }
            catch (InconsistentStateException e) when (attempt < 5)
            {
                metrics.Conflict();
                logger.LogWarning("{Kind} state changed under us ({Message}); re-reading and re-applying {Count} inputs", kind, e.Message, _unflushed.Count);
                await storage.ReadStateAsync();
                var apply = rebuild(storage.State);
                foreach (var input in _unflushed) apply(input);
            }
        }
    }
}
