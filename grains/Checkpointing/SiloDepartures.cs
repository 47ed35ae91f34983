using Orleans.Runtime;

namespace Keystone.Checkpointing;

/// <summary>
/// Which silos left the cluster since the last membership view, and whether this silo is the one to act on it. Every
/// silo watches the membership; the active silo with the lowest address acts, so a departure starts one recovery,
/// not one per survivor. A silo that was already gone in the first view this silo sees is history (its partitions
/// were recovered when their grains activated again), and a silo that is not active itself never acts.
/// </summary>
public sealed class SiloDepartures<TSilo>(TSilo self) where TSilo : notnull, IComparable<TSilo>
{
    private readonly HashSet<TSilo> _gone = [];
    private bool _seenOnce;

    /// <summary>Takes the next membership view; returns the silos that left since the previous one (empty when
    /// this silo is not the one to act on them).</summary>
    public IReadOnlyList<TSilo> Observe(IEnumerable<(TSilo Silo, SiloStatus Status)> members)
    {
        var view = members.ToList();
        var left = view.Where(m => m.Status == SiloStatus.Dead && _gone.Add(m.Silo)).Select(m => m.Silo).ToList();
        if (!_seenOnce)
        {
            _seenOnce = true;
            return [];
        }
        var active = view.Where(m => m.Status == SiloStatus.Active).Select(m => m.Silo).ToList();
        if (left.Count == 0 || active.Count == 0 || !active.Contains(self) || active.Min()!.CompareTo(self) != 0) return [];
        return left;
    }

    /// <summary>
    /// Observes every view of <paramref name="views"/> and starts <paramref name="recover"/> for each departure this
    /// silo acts on, without waiting for it before reading the next view: a recovery can wait on grains that lived on
    /// a silo killed meanwhile (Orleans' 30 s response timeout, per attempt), and the next departure must not queue
    /// behind it. Returns once the views end (or <paramref name="stop"/> fires) and the recoveries started have ended.
    /// </summary>
    public async Task WatchAsync(IAsyncEnumerable<IEnumerable<(TSilo Silo, SiloStatus Status)>> views, Func<IReadOnlyList<TSilo>, Task> recover, CancellationToken stop)
    {
        var running = new List<Task>();
        try
        {
            await foreach (var view in views.WithCancellation(stop))
            {
                var left = Observe(view);
                if (left.Count == 0) continue;
                running.RemoveAll(t => t.IsCompleted);
                running.Add(recover(left));
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        try
        {
            await Task.WhenAll(running);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }
}
