using System.Text;

namespace Keystone.Events;

/// <summary>
/// FNV-1a: the one hash that is the same in every process and every run (unlike <see cref="string.GetHashCode()"/>).
/// Partition assignment, de-duplication keys, sketches and session keys all build on it, so their values survive a
/// deploy; StableHashGoldenTests pins each use.
/// </summary>
public static class FnvHash
{
    public const ulong Offset64 = 14695981039346656037UL;
    public const ulong Prime64 = 1099511628211UL;
    public const uint Offset32 = 2166136261;
    public const uint Prime32 = 16777619;

    /// <summary>FNV-1a 64 over bytes, continuing from <paramref name="hash"/> (the offset basis to start afresh).</summary>
    public static ulong Fnv1a64(ReadOnlySpan<byte> bytes, ulong hash = Offset64)
    {
        foreach (var b in bytes)
        {
            hash ^= b;
            hash *= Prime64;
        }
        return hash;
    }

    /// <summary>FNV-1a 64 over the UTF-8 bytes of <paramref name="text"/>; short texts are encoded on the stack.</summary>
    public static ulong Fnv1a64(string text, ulong hash = Offset64)
    {
        Span<byte> stack = stackalloc byte[256];
        var max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var bytes = max <= stack.Length ? stack[..Encoding.UTF8.GetBytes(text, stack)] : Encoding.UTF8.GetBytes(text);
        return Fnv1a64(bytes, hash);
    }

    /// <summary>FNV-1a 64 over UTF-16 code units (one step per char, not per byte): the ad session keys' form.</summary>
    public static ulong Fnv1a64Utf16(ReadOnlySpan<char> text)
    {
        var hash = Offset64;
        foreach (var c in text) hash = (hash ^ c) * Prime64;
        return hash;
    }

    /// <summary>FNV-1a 32 over bytes: enough for a slot in a small in-memory table.</summary>
    public static uint Fnv1a32(ReadOnlySpan<byte> bytes)
    {
        var hash = Offset32;
        foreach (var b in bytes) hash = (hash ^ b) * Prime32;
        return hash;
    }
}
