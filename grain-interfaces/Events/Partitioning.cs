namespace Keystone.Events;

/// <summary>
/// Maps a partition key to one of P partitions with a hash that is the same in every process and every run
/// (unlike <see cref="string.GetHashCode()"/>), so a user's events always meet the same router and keep their order.
/// </summary>
public static class Partitioning
{
    /// <summary>
    /// <see cref="PartitionOf(string, int)"/> of <see cref="KeystoneEvent.PartitionKey"/>, hashed where the key lies
    /// (the payload's bytes, or the event id formatted on the stack) rather than made into a string for every event.
    /// </summary>
    public static int PartitionOf(KeystoneEvent e, int partitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        if (!e.Payload.TryHashString(KeystoneEvent.PartitionKeyField, out var hash))
        {
            Span<byte> id = stackalloc byte[36];
            e.EventId.TryFormat(id, out var written, "D");
            hash = FnvHash.Fnv1a64(id[..written]);
        }
        return (int)(Fold(hash) % (ulong)partitions);
    }

    public static int PartitionOf(string key, int partitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        return (int)(Fnv1a64(key) % (ulong)partitions);
    }

    public static ulong Fnv1a64(string key) => Fold(FnvHash.Fnv1a64(key));

    // FNV's low bits mix poorly for short keys that differ only at the end; fold the high half in.
    private static ulong Fold(ulong hash) => hash ^ (hash >> 32);
}
