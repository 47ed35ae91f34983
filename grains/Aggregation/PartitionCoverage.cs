namespace Keystone.Aggregation;

/// <summary>
/// Coalesces checkpoint requests for a grain that several partitions' operators feed (a video, an ad campaign):
/// each operator's barrier needs what this grain applied from its partition, up to a log position, to be in storage.
/// A write that began after that was applied answers it, so eight barriers arriving together cost one write rather
/// than eight. Positions are kept in memory only: a new activation has applied nothing yet.
/// </summary>
internal sealed class PartitionCoverage
{
    private readonly Dictionary<int, long> _applied = [];
    private Dictionary<int, long> _durable = [];
    private Task? _writing;

    public void Applied(int partition, long sequence)
    {
        if (sequence > _applied.GetValueOrDefault(partition, -1)) _applied[partition] = sequence;
    }

    public bool IsDurable(int partition, long sequence) =>
        _durable.GetValueOrDefault(partition, -1) >= Math.Min(sequence, _applied.GetValueOrDefault(partition, -1));

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
        await write();
        _durable = covered;
    }
}
