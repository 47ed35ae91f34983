namespace Keystone.Aggregation;

/// <summary>
/// Coalesces checkpoint requests for a grain that several partitions' operators feed (a video, an ad campaign):
/// each operator's barrier needs what this grain applied from its partition, up to a log position, to be in storage.
/// A write that began after that was applied answers it, so eight barriers arriving together cost one write rather
/// than eight. Positions are kept in memory only: a new activation has applied nothing yet.
/// Positions normally grow, but a replay can bring older ones after newer ones: what was applied since the last
/// completed write began is tracked by its lowest position too, so a write covering 52 does not answer a barrier at 51
/// when 45–51 arrived after it.
/// </summary>
/// <remarks>
/// Every user, profile and graph vertex holds one, mostly fed by a single partition: the positions live in one small
/// array of structs (72 bytes for one partition) rather than in four dictionaries (about 850).
/// </remarks>
internal sealed class PartitionCoverage
{
    private struct Positions
    {
        public int Partition;
        public long Applied;
        // What the write in flight (or the last one) covers: Applied when it began, -1 for a partition first seen since.
        public long Covering;
        public long Durable;
        // Lowest position applied since the newest write began, and since the last completed one began.
        public long LowSinceBegun;
        public long LowUnwritten;
    }

    private Positions[] _positions = [];
    private int _count;
    private Task? _writing;

    public void Applied(int partition, long sequence)
    {
        ref var p = ref FindOrAdd(partition);
        if (sequence > p.Applied) p.Applied = sequence;
        if (sequence < p.LowSinceBegun) p.LowSinceBegun = sequence;
        if (sequence < p.LowUnwritten) p.LowUnwritten = sequence;
    }

    public bool IsDurable(int partition, long sequence)
    {
        var i = IndexOf(partition);
        // Nothing applied from a partition: a barrier from it needs no write.
        if (i < 0) return true;
        ref var p = ref _positions[i];
        return p.Durable >= Math.Min(sequence, p.Applied) && p.LowUnwritten > sequence;
    }

    /// <summary>Returns once what was applied from <paramref name="partition"/> up to <paramref name="sequence"/> is durable.</summary>
    public async Task EnsureAsync(int partition, long sequence, Func<Task> write)
    {
        while (!IsDurable(partition, sequence))
        {
            if (_writing is { IsCompleted: false } inFlight)
            {
                // Its caller sees a failure; this one then writes itself.
                try { await inFlight; } catch (Exception) { }
            }
            else
            {
                await WriteAsync(write);
            }
        }
    }

    /// <summary>Runs a write (one at a time); what had been applied when it began is durable once it completes.</summary>
    public async Task WriteAsync(Func<Task> write)
    {
        while (_writing is { IsCompleted: false } inFlight)
        {
            try { await inFlight; } catch (Exception) { }
        }
        // Awaiters resume only after the coverage is recorded: the task they wait on includes it.
        var covering = Covering(write);
        _writing = covering;
        await covering;
    }

    private async Task Covering(Func<Task> write)
    {
        for (var i = 0; i < _count; i++)
        {
            ref var p = ref _positions[i];
            p.Covering = p.Applied;
            p.LowSinceBegun = long.MaxValue;
        }
        await write();
        for (var i = 0; i < _count; i++)
        {
            ref var p = ref _positions[i];
            p.Durable = p.Covering;
            p.LowUnwritten = p.LowSinceBegun;
        }
    }

    private int IndexOf(int partition)
    {
        for (var i = 0; i < _count; i++)
            if (_positions[i].Partition == partition) return i;
        return -1;
    }

    private ref Positions FindOrAdd(int partition)
    {
        var i = IndexOf(partition);
        if (i >= 0) return ref _positions[i];
        if (_count == _positions.Length) Array.Resize(ref _positions, Math.Max(1, _count * 2));
        _positions[_count] = new Positions
        {
            Partition = partition, Applied = -1, Covering = -1, Durable = -1,
            LowSinceBegun = long.MaxValue, LowUnwritten = long.MaxValue,
        };
        return ref _positions[_count++];
    }
}
