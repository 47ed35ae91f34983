namespace Keystone.Checkpointing;

/// <summary>
/// Raised by a stopping silo before Orleans deactivates its grains (and the snapshot buckets with them). From then on
/// entity checkpoints start no more state writes (<see cref="TryEnter"/> refuses), and the silo waits for the writes
/// already in flight while the buckets still answer (<see cref="DrainAsync"/>). A checkpoint cut short covers nothing:
/// what it would have covered is after the covered position of the fronting log (or the operator's log), replayed
/// after the restart. Without this, a stop in the middle of a checkpoint logged an error for every write that found
/// its bucket gone.
/// </summary>
public sealed class SiloStopping
{
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private int _stopping;

    public bool IsStopping => Volatile.Read(ref _stopping) == 1;

    /// <summary>Before a state write; false once the silo is stopping. Each true is followed by one <see cref="Exit"/>.</summary>
    public bool TryEnter()
    {
        // Counted before the check: a stop that begins in between waits for this write, or this write sees the stop.
        Interlocked.Increment(ref _inFlight);
        if (!IsStopping) return true;
        Exit();
        return false;
    }

    public void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && IsStopping) _drained.TrySetResult();
    }

    /// <summary>Refuses new writes from now on; completes when those in flight are done.</summary>
    public Task DrainAsync()
    {
        // Full fences on both sides (here and in TryEnter/Exit): the last write out sees the stop, or this sees it out.
        Interlocked.Exchange(ref _stopping, 1);
        if (Volatile.Read(ref _inFlight) == 0) _drained.TrySetResult();
        return _drained.Task;
    }
}

public static class ClusterMembershipExtensions
{
    /// <summary>Whether a silo other than <paramref name="self"/> is active: where a stopping silo's grains and
    /// snapshot buckets can go.</summary>
    public static bool OthersActive(this IClusterMembershipService membership, SiloAddress self) =>
        membership.CurrentSnapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(self));
}

/// <summary>A checkpoint cut short because its silo is stopping (see <see cref="SiloStopping"/>).</summary>
public sealed class SiloStoppingException() : OperationCanceledException("the silo is stopping: this checkpoint covers nothing, and the fronting log replays what it would have covered");
