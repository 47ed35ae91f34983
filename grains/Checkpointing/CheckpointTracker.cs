namespace Keystone.Checkpointing;

/// <summary>
/// The coordinator's bookkeeping, free of grains and storage. Checkpoint n is started for every partition; per
/// partition it completes once the router has said which fronting position its barrier follows and every consumer
/// has acknowledged the barrier, in whichever order those arrive. A completed checkpoint covers its position: the log
/// before it is never needed again. Checkpoints complete in order per partition; an older one that is still pending
/// when a newer completes is dropped (the newer covers more).
/// </summary>
public sealed class CheckpointTracker
{
    private readonly IReadOnlyCollection<string> _consumers;
    private readonly long[] _covered;
    private readonly long[] _completed;
    private readonly Dictionary<(long Checkpoint, int Partition), Pending> _pending = [];

    private sealed class Pending(IEnumerable<string> consumers)
    {
        public long? Position;
        public readonly HashSet<string> Waiting = new(consumers, StringComparer.Ordinal);
    }

    public CheckpointTracker(int partitions, IReadOnlyCollection<string> consumers, long started = 0, long[]? covered = null)
    {
        if (covered is not null && covered.Length != partitions) throw new ArgumentException($"{covered.Length} covered positions for {partitions} partitions", nameof(covered));
        _consumers = consumers;
        _covered = covered is null ? new long[partitions] : [.. covered];
        _completed = new long[partitions];
        Array.Fill(_completed, started);
        Started = started;
    }

    /// <summary>The newest checkpoint started.</summary>
    public long Started { get; private set; }

    /// <summary>The newest checkpoint completed on every partition.</summary>
    public long Completed => _completed.Length == 0 ? Started : _completed.Min();

    public int Partitions => _covered.Length;

    public long Covered(int partition) => _covered[partition];

    public long[] CoveredPositions() => [.. _covered];

    public int PendingCount => _pending.Count;

    /// <summary>Starts the next checkpoint on every partition and returns its number.</summary>
    public long Begin()
    {
        var n = ++Started;
        for (var p = 0; p < _covered.Length; p++) _pending[(n, p)] = new Pending(_consumers);
        return n;
    }

    /// <summary>The router of <paramref name="partition"/> put barrier <paramref name="checkpoint"/> after <paramref name="position"/>.
    /// True when that completed the partition's checkpoint.</summary>
    public bool Injected(long checkpoint, int partition, long position)
    {
        if (!_pending.TryGetValue((checkpoint, partition), out var pending)) return false;
        pending.Position = position;
        return TryComplete(checkpoint, partition, pending);
    }

    /// <summary>A consumer acknowledged a barrier. True when that completed the partition's checkpoint; an unknown,
    /// repeated or outdated acknowledgement changes nothing.</summary>
    public bool Acknowledged(long checkpoint, int partition, string consumer)
    {
        if (!_pending.TryGetValue((checkpoint, partition), out var pending)) return false;
        pending.Waiting.Remove(consumer);
        return TryComplete(checkpoint, partition, pending);
    }

    /// <summary>Gives up a partition's checkpoint whose router could not be reached (the next one will try again).</summary>
    public void Abandon(long checkpoint, int partition) => _pending.Remove((checkpoint, partition));

    private bool TryComplete(long checkpoint, int partition, Pending pending)
    {
        if (pending.Position is not { } position || pending.Waiting.Count > 0) return false;
        _covered[partition] = Math.Max(_covered[partition], position);
        _completed[partition] = Math.Max(_completed[partition], checkpoint);
        foreach (var key in _pending.Keys.Where(k => k.Partition == partition && k.Checkpoint <= checkpoint).ToList()) _pending.Remove(key);
        return true;
    }
}
