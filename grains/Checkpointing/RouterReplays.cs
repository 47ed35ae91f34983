namespace Keystone.Checkpointing;

/// <summary>
/// The router's side of a replay from the fronting log (the consumer's side is <see cref="ReplayBarrierGate"/>): which
/// requests need a replay of their own, and which barrier the replayed events follow. A consumer first forgets what it
/// would drop, then reads <see cref="Started"/>, then asks with that count: a replay started after that reached it
/// whole, so it is not started again. The router is not reentrant, so no barrier goes out during a replay.
/// </summary>
public sealed class RouterReplays
{
    /// <summary>Replays started by this router activation.</summary>
    public long Started { get; private set; }

    /// <summary>The newest barrier put out before the latest replay.</summary>
    public long BarrierBefore { get; private set; }

    /// <summary>True when a replay must run for a consumer that saw <paramref name="startedSeen"/>; it is then counted
    /// as started after barrier <paramref name="lastBarrier"/>.</summary>
    public bool Begin(long startedSeen, long lastBarrier)
    {
        if (Started > startedSeen) return false;
        Started++;
        BarrierBefore = lastBarrier;
        return true;
    }
}
