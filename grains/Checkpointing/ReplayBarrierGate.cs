namespace Keystone.Checkpointing;

/// <summary>
/// Which checkpoint barriers a stateful consumer may acknowledge when it has asked its router to replay the fronting
/// log (because entity grains lost their memory). The replayed events follow every barrier the router had put out
/// before the replay; acknowledging one of those would claim the replayed events durable before a lost entity has
/// applied them again. So the barriers waiting when a replay starts are dropped, every barrier arriving while it is
/// under way is dropped, and afterwards those the router numbered up to the replay are dropped too. Dropping is always
/// safe: a checkpoint that misses a partition's acknowledgement is overtaken by the next, which covers more.
/// </summary>
public sealed class ReplayBarrierGate
{
    private readonly List<long> _waiting = [];
    private long _sentBeforeReplay;

    /// <summary>A replay was asked for and has not been sent yet.</summary>
    public bool Replaying { get; private set; }

    /// <summary>How many replays have started: a checkpoint that began before the latest one covers none of its
    /// barriers.</summary>
    public long Replays { get; private set; }

    /// <summary>Barriers that arrived and may be acknowledged once a checkpoint covers them, oldest first.</summary>
    public IReadOnlyList<long> Waiting => _waiting;

    public void Arrived(IEnumerable<long> barriers)
    {
        foreach (var n in barriers)
            if (!Replaying && n > _sentBeforeReplay) _waiting.Add(n);
    }

    /// <summary>A replay is asked for: from now on no barrier is taken until the router says where the replay starts.</summary>
    public void ReplayAsked()
    {
        Replaying = true;
        Replays++;
        _waiting.Clear();
    }

    /// <summary>The router has sent the replay, after barrier <paramref name="lastBarrierBefore"/> (and every older one).</summary>
    public void ReplaySent(long lastBarrierBefore)
    {
        _sentBeforeReplay = Math.Max(_sentBeforeReplay, lastBarrierBefore);
        Replaying = false;
    }

    /// <summary>The replay could not be asked for; it will be asked again.</summary>
    public void ReplayFailed() => Replaying = false;

    /// <summary>The first <paramref name="count"/> waiting barriers were acknowledged.</summary>
    public void Acknowledged(int count) => _waiting.RemoveRange(0, Math.Min(count, _waiting.Count));
}
