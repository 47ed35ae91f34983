using Keystone.Storage;
using Orleans.Runtime;
using Orleans.Storage;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Keystone.Aggregation;

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
    ILogger logger,
    bool preparedAtSerialization = false) where TState : class, new()
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

    /// <summary>
    /// Writes if anything changed. <paramref name="prepare"/> copies in-memory structures into the state;
    /// <paramref name="release"/>, once the write succeeded, drops those copies, so that an idle entity does not hold
    /// its de-duplication memory twice until its next write.
    /// </summary>
    /// <remarks>
    /// Safe to call from an interleaved grain method: one write runs at a time, and changes recorded while a write is
    /// in flight stay pending for the next one. Orleans' storage bridge yields before the provider serialises, so a
    /// delivery can be applied in between; <see cref="SnapshotCapture"/> runs <paramref name="prepare"/> again at
    /// serialisation, and the state written is of one instant (counts and the ids behind them together).
    /// </remarks>
    public async Task WriteAsync(Action prepare, Action? release = null)
    {
        while (_writing is { IsCompleted: false } running)
        {
            try { await running; }
            catch (Exception) { /* that caller sees the failure; this one writes afresh below */ }
        }
        if (!Dirty)
        {
            if (EntityLeaving.Active && preparedAtSerialization && storage.RecordExists) await Park(prepare, release);
            return;
        }
        var write = Write(prepare, release);
        _writing = write;
        try { await write; }
        finally { if (_writing == write) _writing = null; }
    }

    private async Task Write(Action prepare, Action? release)
    {
        // When the storage serialises (see SnapshotCapture), so that what is applied meanwhile is captured with its ids.
        // The snapshot storage does that; preparing here as well would copy a large state twice (an ad campaign's
        // de-duplication memory and sessions, hundreds of kilobytes). Other providers (Orleans' memory storage)
        // serialise what they are given: for them, prepare now.
        var current = storage.State;
        if (current is not null) SnapshotCapture.Register(current, prepare);
        if (!preparedAtSerialization || current is null) prepare();
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
        if (current is not null) SnapshotCapture.Unregister(current);
        release?.Invoke();
    }

    // Leaving memory with nothing to write: the bucket keeps the serialized state it already has durably, so that the
    // entity's return costs no storage request. Best effort: if it fails, the return reads the state from storage.
    private async Task Park(Action prepare, Action? release)
    {
        var current = storage.State;
        SnapshotCapture.Register(current, prepare);
        try
        {
            await EntityLeaving.Park(storage.WriteStateAsync);
        }
        catch (Exception e)
        {
            logger.LogDebug(e, "{Kind} state could not be kept in its bucket's memory as it left", kind);
        }
        finally
        {
            SnapshotCapture.Unregister(current);
            release?.Invoke();
        }
    }
}

/// <summary>Whether an entity grain writes its state as it deactivates.</summary>
internal static class DeactivationWrite
{
    /// <summary>
    /// Not when the silo shuts down: every entity would write at once, queued behind each other in the snapshot
    /// buckets (themselves deactivating), past Orleans' deactivation timeout. Nothing is lost by not writing: what the
    /// grain applied since its last checkpoint lies after the covered position of the fronting log (or the operator's
    /// log) and is replayed, de-duplicated by event id. Idle deactivations still write, which spares that replay.
    /// </summary>
    public static bool Wanted(DeactivationReason reason) => reason.ReasonCode != DeactivationReasonCode.ShuttingDown;

    /// <summary>Runs the entity's last writes when <see cref="Wanted"/>, as an entity leaving memory (see <see cref="EntityLeaving"/>).</summary>
    public static Task Leave(DeactivationReason reason, Func<Task> writes) => Wanted(reason) ? EntityLeaving.Run(writes) : Task.CompletedTask;

    /// <summary>
    /// <see cref="Leave(DeactivationReason, Func{Task})"/> for a grain with several states (an entity's aggregation and
    /// its graph side): each is written whatever happened to the others. One refused as stale says nothing about the
    /// others, and what this activation applied to them is lost with it unless it is written now.
    /// </summary>
    public static Task Leave(DeactivationReason reason, Func<Task> first, Func<Task> second) => Leave(reason, () => Both(first, second));

    internal static async Task Both(Func<Task> first, Func<Task> second)
    {
        Exception? failed = null;
        try { await first(); }
        catch (Exception e) { failed = e; }
        try { await second(); }
        catch (Exception e) when (failed is not null) { throw new AggregateException(failed, e); }
        if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
    }
}
