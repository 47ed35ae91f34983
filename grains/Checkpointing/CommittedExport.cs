using Keystone.Aggregation;

namespace Keystone.Checkpointing;

/// <summary>
/// The outputs of a stateful operator that have effects outside the pipeline (billing, fraud alerts), held back until
/// the state that decided them is durable. Free of grains and storage; the operator wires it to its checkpoint:
/// <list type="number">
/// <item>each decision is <see cref="Offer"/>ed as it is made, keyed by the event it is about;</item>
/// <item>at a checkpoint, <see cref="Seal"/> takes what is pending (every event of the deliveries the checkpoint
/// covers) as batches, before the entities write;</item>
/// <item>once the entities are durable, the operator writes each batch out, named after its <see cref="ExportBatch{TRecord}.At"/>,
/// between <see cref="Writing"/> and <see cref="Released"/>, then writes its own checkpoint.</item>
/// </list>
/// An output never leaves before its decision is durable, so a crash cannot make the pipeline decide an event
/// differently from what was sent out. After a crash, the replay brings every decision back: newly made where the
/// entity had not written, recalled from the entity's record where it had (entities return recorded verdicts for
/// repeats). What was released is remembered for <c>horizon</c> (rebuilt from the export itself on activation,
/// <see cref="Restore"/>), so a replay re-sends nothing; past the horizon, a repeat would carry the same id.
/// <para>
/// A batch whose write began is in doubt until it is released: a write that failed may still have landed (its answer
/// lost), so the next checkpoint writes the same records under the same time again, and a file written twice has the
/// same name and bytes. Sealing its events afresh would put the events of a landed write into a second file. A batch
/// sealed by a checkpoint that stopped before writing (its entities lost their memory, say) was never out: its events
/// are sealed again with the decisions made since.
/// </para>
/// </summary>
public sealed class CommittedExport<TRecord>(TimeSpan horizon, int capacity, Func<TRecord, Guid> eventOf)
{
    private readonly Dictionary<Guid, TRecord> _pending = [];
    private readonly List<ExportBatch<TRecord>> _inDoubt = [];
    private readonly HashSet<Guid> _inDoubtIds = [];
    private readonly EventIdHorizon _released = new(horizon, capacity);

    /// <summary>Events whose output is decided and not yet released (in doubt or not).</summary>
    public int Pending => _pending.Count;

    /// <summary>Events whose outputs were released and are remembered.</summary>
    public int Remembered => _released.Count;

    /// <summary>
    /// Takes the output for an event; false when that event's output was already released. An output still pending
    /// for the same event is replaced: a later decision comes from the activation whose state is the one that will be
    /// written (the earlier one's memory was lost, which is why the event was applied again). An output whose write
    /// began is not: that one may be out, and the replacement is dropped when it is released.
    /// </summary>
    public bool Offer(TRecord record)
    {
        var id = eventOf(record);
        if (_released.Contains(id)) return false;
        _pending[id] = record;
        return true;
    }

    /// <summary>
    /// What this checkpoint writes, oldest first: every batch in doubt, unchanged, then everything else pending, as a
    /// new batch at <paramref name="at"/>. Everything stays pending until <see cref="Released"/>.
    /// </summary>
    public IReadOnlyList<ExportBatch<TRecord>> Seal(DateTimeOffset at)
    {
        var batches = new List<ExportBatch<TRecord>>(_inDoubt);
        List<TRecord>? fresh = null;
        foreach (var (id, record) in _pending)
            if (!_inDoubtIds.Contains(id)) (fresh ??= []).Add(record);
        if (fresh is not null) batches.Add(new ExportBatch<TRecord>(fresh, at));
        return batches;
    }

    /// <summary>A sealed batch is about to be written: from here on it may be out, until <see cref="Released"/> says it is.</summary>
    public void Writing(ExportBatch<TRecord> batch)
    {
        if (_inDoubt.Contains(batch)) return;
        _inDoubt.Add(batch);
        foreach (var record in batch.Records) _inDoubtIds.Add(eventOf(record));
    }

    /// <summary>A sealed batch was written out: its outputs are remembered as released. A decision that replaced one
    /// of them since the seal is dropped too: what was sent cannot be taken back, and a second record for the event
    /// would bill it twice.</summary>
    public void Released(ExportBatch<TRecord> batch, DateTimeOffset now)
    {
        _inDoubt.Remove(batch);
        foreach (var record in batch.Records)
        {
            var id = eventOf(record);
            _inDoubtIds.Remove(id);
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

/// <summary>Outputs sealed together, written as one file named after <paramref name="At"/>.</summary>
public sealed record ExportBatch<TRecord>(IReadOnlyList<TRecord> Records, DateTimeOffset At);
