using Keystone.Aggregation;

namespace Keystone.Checkpointing;

/// <summary>
/// The outputs of a stateful operator that have effects outside the pipeline (billing, fraud alerts), held back until
/// the state that decided them is durable. Free of grains and storage; the operator wires it to its checkpoint:
/// <list type="number">
/// <item>each decision is <see cref="Offer"/>ed as it is made, keyed by the event it is about;</item>
/// <item>at a checkpoint, <see cref="Seal"/> takes what is pending (every event of the deliveries the checkpoint
/// covers), before the entities write;</item>
/// <item>once the entities are durable, the operator writes the sealed outputs out and calls <see cref="Released"/>,
/// then writes its own checkpoint.</item>
/// </list>
/// An output never leaves before its decision is durable, so a crash cannot make the pipeline decide an event
/// differently from what was sent out. After a crash, the replay brings every decision back: newly made where the
/// entity had not written, recalled from the entity's record where it had (entities return recorded verdicts for
/// repeats). What was released is remembered for <c>horizon</c> (rebuilt from the export itself on activation,
/// <see cref="Restore"/>), so a replay re-sends nothing; past the horizon, a repeat would carry the same id.
/// </summary>
public sealed class CommittedExport<TRecord>(TimeSpan horizon, int capacity, Func<TRecord, Guid> eventOf)
{
    private readonly Dictionary<Guid, TRecord> _pending = [];
    private readonly EventIdHorizon _released = new(horizon, capacity);

    public int Pending => _pending.Count;

    /// <summary>Events whose outputs were released and are remembered.</summary>
    public int Remembered => _released.Count;

    /// <summary>
    /// Takes the output for an event; false when that event's output was already released. An output still pending
    /// for the same event is replaced: a later decision comes from the activation whose state is the one that will be
    /// written (the earlier one's memory was lost, which is why the event was applied again).
    /// </summary>
    public bool Offer(TRecord record)
    {
        var id = eventOf(record);
        if (_released.Contains(id)) return false;
        _pending[id] = record;
        return true;
    }

    /// <summary>Everything pending now, in no particular order; it stays pending until <see cref="Released"/>.</summary>
    public IReadOnlyList<TRecord> Seal() => [.. _pending.Values];

    /// <summary>The sealed outputs were written out: they are no longer pending and are remembered as released. A
    /// decision that replaced one of them since the seal is dropped too: what was sent cannot be taken back, and a
    /// second record for the event would bill it twice.</summary>
    public void Released(IReadOnlyList<TRecord> records, DateTimeOffset now)
    {
        foreach (var record in records)
        {
            var id = eventOf(record);
            _pending.Remove(id);
            _released.TryAdd(id, now);
        }
    }

    /// <summary>Outputs released before this activation (read back from the export), oldest first.</summary>
    public void Restore(IEnumerable<(Guid EventId, DateTimeOffset ReleasedAt)> released)
    {
        foreach (var (id, at) in released) _released.TryAdd(id, at);
    }
}
