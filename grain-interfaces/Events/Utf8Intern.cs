using System.Text;

namespace Keystone.Events;

/// <summary>
/// A small, lossy cache from UTF-8 bytes to strings, for the envelope's low-cardinality values (event types,
/// versions, services, regions, metadata keys): parsing a batch then allocates one string per distinct value
/// instead of one per event. Collisions simply miss; the size is fixed, so hostile input cannot grow it.
/// </summary>
internal static class Utf8Intern
{
    private sealed class Entry(byte[] utf8, string value)
    {
        public readonly byte[] Utf8 = utf8;
        public readonly string Value = value;
    }

    private const int Size = 1024;
    private static readonly Entry?[] s_entries = new Entry?[Size];

    public static string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length is 0 or > 48) return Encoding.UTF8.GetString(utf8);
        var hash = FnvHash.Fnv1a32(utf8);
        ref var slot = ref s_entries[hash & (Size - 1)];
        var entry = Volatile.Read(ref slot);
        if (entry is not null && utf8.SequenceEqual(entry.Utf8)) return entry.Value;
        var value = Encoding.UTF8.GetString(utf8);
        Volatile.Write(ref slot, new Entry(utf8.ToArray(), value));
        return value;
    }
}
