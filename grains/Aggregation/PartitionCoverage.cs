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
internal sealed class PartitionCoverage
{
    private readonly Dictionary<int, long> _applied = [];
    private Dictionary<int, long> _durable = [];
    // Lowest position applied per partition since the newest write began, and since the last completed one began.
    private readonly Dictionary<int, long> _lowSinceBegun = [];
    private readonly Dictionary<int, long> _lowUnwritten = [];
    private Task? _writing;

    public void Applied(int partition, long sequence)
    {
        if (sequence > _applied.GetValueOrDefault(partition, -1)) _applied[partition] = sequence;
        Lower(_lowSinceBegun, partition, sequence);
        Lower(_lowUnwritten, partition, sequence);
    }

    public bool IsDurable(int partition, long sequence) =>
        _durable.GetValueOrDefault(partition, -1) >= Math.Min(sequence, _applied.GetValueOrDefault(partition, -1))
        && _lowUnwritten.GetValueOrDefault(partition, long.MaxValue) > sequence;

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
        var covered = new Dictionary<int, long>(_applied);
        _lowSinceBegun.Clear();
        await write();
        _durable = covered;
        _lowUnwritten.Clear();
        foreach (var (partition, low) in _lowSinceBegun) _lowUnwritten[partition] = low;
    }

    private static void Lower(Dictionary<int, long> lows, int partition, long sequence)
    {
        if (sequence < lows.GetValueOrDefault(partition, long.MaxValue)) lows[partition] = sequence;
    }
}
