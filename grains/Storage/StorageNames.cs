using System.Text;

namespace Keystone.Storage;

/// <summary>
/// Names in storage. Keys and ids become blob names only through <see cref="Key"/> / <see cref="Segment"/>: a
/// segment that is plain (<c>[A-Za-z0-9._-]</c>, not ending in a dot) is used as it is, so existing state keeps its
/// name; any other segment becomes <c>~</c> followed by its UTF-8 bytes in lower-case base32hex (RFC 4648, no
/// padding). Plain segments never contain <c>~</c>, so the two forms cannot collide, and the encoding is reversible
/// (<see cref="DecodeSegment"/>). Every name it produces is URL-safe ASCII that Azure, Azurite, shells and file
/// systems accept, and a 128-character id stays under 620 characters (blob names may have 1,024).
/// </summary>
public static class StorageNames
{
    /// <summary>The grain storage provider for all Keystone state (Azure Blob storage; one blob per grain).</summary>
    public const string State = "keystone-state";

    /// <summary>Marks an encoded segment; not in the plain alphabet.</summary>
    public const char EncodedMarker = '~';

    private const string Base32Hex = "0123456789abcdefghijklmnopqrstuv";

    /// <summary>A grain key in storage: each <c>/</c>-separated part through <see cref="Segment"/> (vertex keys are <c>{type}/{id}</c>).</summary>
    public static string Key(string key)
    {
        if (IsPlain(key)) return key;
        if (!key.Contains('/')) return Segment(key);
        var stored = string.Join('/', key.Split('/').Select(Segment));
        return stored == key ? key : stored;
    }

    /// <summary>One path segment of a blob name, derived from an id: the id itself when plain, else its encoding.</summary>
    public static string Segment(string id) => IsPlain(id) ? id : EncodedMarker + ToBase32Hex(Encoding.UTF8.GetBytes(id));

    /// <summary>The id a <see cref="Segment"/> was made from.</summary>
    public static string DecodeSegment(string segment) =>
        segment.Length > 0 && segment[0] == EncodedMarker ? Encoding.UTF8.GetString(FromBase32Hex(segment.AsSpan(1))) : segment;

    /// <summary>Used as it is in a blob name. A trailing dot is not: Azure advises against segments ending in one.</summary>
    public static bool IsPlain(string segment)
    {
        if (segment.Length == 0 || segment[^1] == '.') return false;
        foreach (var c in segment)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')) return false;
        return true;
    }

    private static string ToBase32Hex(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder((bytes.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in bytes)
        {
            buffer = ((buffer << 8) | b) & 0xFFFF; // never more than 12 live bits
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                text.Append(Base32Hex[(buffer >> bits) & 31]);
            }
        }
        if (bits > 0) text.Append(Base32Hex[(buffer << (5 - bits)) & 31]);
        return text.ToString();
    }

    private static byte[] FromBase32Hex(ReadOnlySpan<char> text)
    {
        var bytes = new List<byte>(text.Length * 5 / 8);
        int buffer = 0, bits = 0;
        foreach (var c in text)
        {
            var value = Base32Hex.IndexOf(c);
            if (value < 0) throw new FormatException($"'{c}' is not a base32hex digit");
            buffer = ((buffer << 5) | value) & 0xFFFF;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                bytes.Add((byte)(buffer >> bits));
            }
        }
        return [.. bytes];
    }
}
