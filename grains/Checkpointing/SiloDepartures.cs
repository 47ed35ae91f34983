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
}
