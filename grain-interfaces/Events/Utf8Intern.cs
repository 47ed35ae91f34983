using System.Text;

namespace Keystone.Events;

/// <summary>
/// Small, lossy caches from UTF-8 bytes to strings, so that decoding a value that repeats across events allocates one
/// string per distinct value instead of one per event, and the entity state that keeps those values shares them.
/// Direct-mapped: a collision simply replaces the slot, and the size is fixed, so hostile input cannot grow it. Only
/// short ASCII values are kept (ids, types, keys); anything else is decoded as usual.
/// </summary>
internal sealed class Utf8Intern(int slots, int maxBytes)
{
    /// <summary>The envelope's low-cardinality values: event types, versions, services, regions, metadata keys.</summary>
    public static readonly Utf8Intern Envelope = new(1024, 48);

    /// <summary>
    /// Payload strings read by field (user, video, device, profile and campaign ids, segments): the aggregators, the
    /// graph and the ads read the same few thousand ids again and again. 64 Ki slots, half a megabyte.
    /// </summary>
    public static readonly Utf8Intern Payload = new(1 << 16, 64);

    private readonly string?[] _slots = new string?[slots];
    private readonly int _mask = CheckedMask(slots);

    public string GetOrAdd(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length == 0) return "";
        if (utf8.Length > maxBytes) return Encoding.UTF8.GetString(utf8);
        ref var slot = ref _slots[(int)(FnvHash.Fnv1a32(utf8) & (uint)_mask)];
        var existing = slot;
        // Ascii.Equals is false for anything non-ASCII, so such values are never matched (and never stored below).
        if (existing is not null && Ascii.Equals(utf8, existing)) return existing;
        var value = Encoding.UTF8.GetString(utf8);
        if (Ascii.IsValid(utf8)) slot = value;
        return value;
    }

    private static int CheckedMask(int slots) =>
        slots > 0 && (slots & (slots - 1)) == 0 ? slots - 1 : throw new ArgumentOutOfRangeException(nameof(slots), "a power of two");
}
