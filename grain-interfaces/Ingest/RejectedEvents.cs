using System.Text;
using System.Text.Json;
using Keystone.Events;

namespace Keystone.Ingest;

/// <summary>
/// The text of refused events, picked out of their request body by index, for the dead-letter store. Only called
/// when something was refused, so the accepting path never pays for it.
/// </summary>
public static class RejectedEvents
{
    public static Dictionary<int, string> Extract(ReadOnlySpan<byte> body, BodyFormat format, IReadOnlyCollection<int> indexes, IReadOnlyList<KeystoneEvent>? decoded = null)
    {
        var wanted = new HashSet<int>(indexes);
        var result = new Dictionary<int, string>();
        if (wanted.Count == 0) return result;
        if (format == BodyFormat.Binary && decoded is not null)
        {
            foreach (var i in wanted)
                if (i >= 0 && i < decoded.Count) result[i] = EventJson.Serialize(decoded[i]);
            return result;
        }
        if (body.StartsWith("\uFEFF"u8)) body = body[3..];
        var text = Encoding.UTF8.GetString(body);
        var trimmed = text.TrimStart();
        // The parser's own rule for Auto: an array, or one object, unless a second record follows on another line.
        if (format == BodyFormat.JsonArray || (format == BodyFormat.Auto && (trimmed.StartsWith('[') || text.Split('\n').Count(l => !string.IsNullOrWhiteSpace(l)) <= 1)))
        {
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind == JsonValueKind.Object)
                {
                    if (wanted.Contains(0)) result[0] = doc.RootElement.GetRawText();
                }
                else if (doc.RootElement.ValueKind == JsonValueKind.Array)
                {
                    var i = 0;
                    foreach (var element in doc.RootElement.EnumerateArray())
                    {
                        if (wanted.Contains(i)) result[i] = element.GetRawText();
                        i++;
                    }
                }
            }
            catch (JsonException)
            {
                // The body as a whole was accepted by the parser, so this does not happen; nothing to keep if it did.
            }
            return result;
        }
        var index = 0;
        foreach (var line in text.Split('\n'))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (wanted.Contains(index)) result[index] = line.TrimEnd('\r');
            index++;
        }
        return result;
    }
}
