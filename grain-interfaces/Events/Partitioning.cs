namespace Keystone.Events;

/// <summary>
/// Maps a partition key to one of P partitions with a hash that is the same in every process and every run
/// (unlike <see cref="string.GetHashCode()"/>), so a user's events always meet the same router and keep their order.
/// </summary>
public static class Partitioning
{
    public static int PartitionOf(KeystoneEvent e, int partitions) => PartitionOf(e.PartitionKey, partitions);

    public static int PartitionOf(string key, int partitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        return (int)(Fnv1a64(key) % (ulong)partitions);
    }

    public static ulong Fnv1a64(string key)
    {
        var hash = FnvHash.Fnv1a64(key);
        // FNV's low bits mix poorly for short keys that differ only at the end; fold the high half in.
        return hash ^ (hash >> 32);
    }
}
