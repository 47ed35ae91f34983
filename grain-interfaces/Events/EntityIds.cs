using System.Globalization;
using System.Text;

namespace Keystone.Events;

/// <summary>
/// The one rule for entity ids (users, profiles, videos, devices, campaigns, ads, creatives, ad sessions, series,
/// genres), wherever they come from: ingest, REST paths, the typed client, the graph. Ids become grain keys, log
/// lines and (encoded, see <c>StorageNames</c>) blob names, so anything invisible, ambiguous on screen or
/// path-like is refused: 1 to 128 characters (UTF-16 code units, as schema lengths count them), no control,
/// format or invisible characters, no whitespace, no <c>/</c> or <c>\</c>, no lone surrogates or noncharacters,
/// and not <c>.</c> or <c>..</c>. Letters of any script, digits, punctuation and symbols are fine.
/// </summary>
public static class EntityIds
{
    public const int MaxLength = 128;

    /// <summary>The payload fields that carry entity ids (<c>genres</c> is an array of them).</summary>
    public static readonly IReadOnlySet<string> PayloadFields = new HashSet<string>(StringComparer.Ordinal)
    {
        "user_id", "profile_id", "from_profile_id", "video_id", "device_id", "campaign_id", "ad_id", "creative_id",
        "ad_session_id", "series_id", "genre", "genres",
    };

    /// <summary>Why <paramref name="id"/> is not acceptable, naming it <paramref name="what"/>; null when it is.</summary>
    public static string? Problem(string id, string what) => Reason(id) is { } reason ? $"{what} {reason}" : null;

    /// <summary>Why <paramref name="id"/> is not acceptable ("must not ..."), without naming it; null when it is.</summary>
    public static string? Reason(string id)
    {
        if (id.Length == 0) return "must not be empty";
        if (id.Length > MaxLength) return $"is {id.Length} characters long; at most {MaxLength} are allowed";
        for (var i = 0; i < id.Length;)
        {
            var c = id[i];
            if (c < 0x80)
            {
                // ASCII is most ids: decide without decoding.
                if (c is '/' or '\\') return $"must not contain '/' or '\\' (found '{c}' at index {i})";
                if (c == ' ') return $"must not contain whitespace (U+0020 at index {i})";
                if (c < 0x20 || c == 0x7F) return $"must not contain control characters ({Code(c)} at index {i})";
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf16(id.AsSpan(i), out var rune, out var used) != System.Buffers.OperationStatus.Done)
                return $"must not contain a lone surrogate ({Code(c)} at index {i})";
            if (Refused(rune) is { } what) return $"must not contain {what} ({Code(rune.Value)} at index {i})";
            i += used;
        }
        return id is "." or ".." ? "must not be '.' or '..'" : null;
    }

    /// <summary>
    /// True when <paramref name="utf8"/> (unescaped JSON string bytes) is certainly a valid id: printable ASCII only,
    /// within the length and not a dot name. False means "look closer" with <see cref="Reason"/>, not "invalid".
    /// Lets ingest pass the usual ids without materialising a string.
    /// </summary>
    public static bool IsPlainAscii(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length is 0 or > MaxLength) return false;
        foreach (var b in utf8)
            if (b <= 0x20 || b >= 0x7F || b is (byte)'/' or (byte)'\\') return false;
        return !(utf8.Length <= 2 && utf8.IndexOfAnyExcept((byte)'.') < 0);
    }

    // Categories first, then the invisible code points that are letters or marks by category (Hangul fillers,
    // variation selectors, the combining grapheme joiner): Unicode's Default_Ignorable_Code_Point set.
    private static string? Refused(Rune rune)
    {
        var v = rune.Value;
        if (v is >= 0x202A and <= 0x202E or >= 0x2066 and <= 0x2069 or 0x200E or 0x200F or 0x061C)
            return "bidirectional control characters";
        switch (Rune.GetUnicodeCategory(rune))
        {
            case UnicodeCategory.Control:
                return "control characters";
            case UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator:
                return "whitespace";
            case UnicodeCategory.Format:
                return "invisible (zero-width or format) characters";
        }
        if (Rune.IsWhiteSpace(rune)) return "whitespace";
        if ((v & 0xFFFE) == 0xFFFE || v is >= 0xFDD0 and <= 0xFDEF) return "Unicode noncharacters";
        foreach (var (first, last) in DefaultIgnorable)
            if (v >= first && v <= last) return "invisible (zero-width or format) characters";
        return null;
    }

    private static readonly (int First, int Last)[] DefaultIgnorable =
    [
        (0x00AD, 0x00AD), (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
        (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
        (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
    ];

    private static string Code(int value) => $"U+{value:X4}";
}
