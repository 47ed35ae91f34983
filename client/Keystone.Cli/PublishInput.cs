using System.Buffers;
using System.Text;
using Keystone.Client.Publishing;
using Keystone.Ingest;

namespace Keystone.Cli;

/// <summary>
/// A file ready for <see cref="EventBatchParser"/>: dead-letter lines unwrapped to their events, the format decided,
/// and for NDJSON the file line of every record so that reports point at the line a person can open.
/// </summary>
internal sealed record PreparedInput(byte[] Body, BodyFormat Format, int[] RecordLines, int Unwrapped)
{
    /// <summary>Where record <paramref name="index"/> (the parser's numbering) sits in the file.</summary>
    public string Locate(int index) =>
        Format == BodyFormat.Ndjson && index >= 0 && index < RecordLines.Length ? $"line {RecordLines[index]}" : $"index {index}";
}

internal static class PublishInput
{
    public static PreparedInput Prepare(ReadOnlySpan<byte> raw, BodyFormat requested)
    {
        if (raw.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) raw = raw[3..];
        if (requested == BodyFormat.JsonArray || (requested == BodyFormat.Auto && FirstNonBlank(raw) == '['))
            return new PreparedInput(raw.ToArray(), BodyFormat.JsonArray, [], 0);

        var output = new ArrayBufferWriter<byte>(raw.Length + 16);
        var lines = new List<int>();
        var unwrapped = 0;
        var lineNumber = 0;
        var firstRecord = ReadOnlySpan<byte>.Empty;
        var rest = raw;
        while (!rest.IsEmpty)
        {
            var nl = rest.IndexOf((byte)'\n');
            var line = nl < 0 ? rest : rest[..nl];
            rest = nl < 0 ? [] : rest[(nl + 1)..];
            lineNumber++;
            if (lineNumber > 1) output.Write("\n"u8);
            if (IsBlank(line)) continue;

            lines.Add(lineNumber);
            if (firstRecord.IsEmpty) firstRecord = line;
            if (line.IndexOf("\"dead_letter\""u8) >= 0)
            {
                var inner = DeadLetterFile.Unwrap(Encoding.UTF8.GetString(line));
                if (!line.SequenceEqual(inner)) unwrapped++;
                output.Write(inner);
            }
            else
            {
                output.Write(line);
            }
        }

        // A single event pretty-printed over several lines is one JSON value, not NDJSON.
        var trimmed = firstRecord.Trim(" \t\r"u8);
        var format = requested == BodyFormat.Auto && trimmed.StartsWith("{"u8) && !trimmed.EndsWith("}"u8) && lines.Count > 1
            ? BodyFormat.JsonArray
            : BodyFormat.Ndjson;
        return new PreparedInput(output.WrittenSpan.ToArray(), format, [.. lines], unwrapped);
    }

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.IndexOfAnyExcept(" \t\r\n"u8) < 0;

    private static int FirstNonBlank(ReadOnlySpan<byte> body)
    {
        var i = body.IndexOfAnyExcept(" \t\r\n"u8);
        return i < 0 ? -1 : body[i];
    }
}
