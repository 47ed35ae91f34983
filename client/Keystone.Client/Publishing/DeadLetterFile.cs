using System.Buffers;
using System.Text;
using System.Text.Json;
using Keystone.Events;

namespace Keystone.Client.Publishing;

/// <summary>
/// The SDK's local dead-letter file: JSON lines, one per event, each
/// <c>{"dead_letter":{"reason":...,"attempts":n,"at":...},"event":{...envelope...}}</c>. <see cref="ReadEvents"/> (and
/// so <c>keystone publish</c>) accepts these lines as well as plain envelopes, so the file can be re-published as is.
/// </summary>
public sealed class DeadLetterFile(string path)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public async Task AppendAsync(PendingBatch batch, string reason, int attempts, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        var ndjson = batch.ToNdjson();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(ndjson.Length + batch.Count * 128);
        var header = JsonSerializer.SerializeToUtf8Bytes(new { reason, attempts, at = EventJson.FormatTimestamp(at) });
        foreach (var line in SplitLines(ndjson))
        {
            buffer.Write("{\"dead_letter\":"u8);
            buffer.Write(header);
            buffer.Write(",\"event\":"u8);
            buffer.Write(line.Span);
            buffer.Write("}\n"u8);
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            var dir = System.IO.Path.GetDirectoryName(Path);
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            await using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            await stream.WriteAsync(buffer.WrittenMemory, cancellationToken);
            await stream.FlushAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The envelope JSON of every event in a dead-letter (or plain NDJSON) file, as NDJSON.</summary>
    public static byte[] ReadEventsAsNdjson(string path)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            output.Write(Unwrap(line));
            output.Write("\n"u8);
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Returns the inner event of a dead-letter line, or the line itself when it is not one.</summary>
    public static byte[] Unwrap(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        if (!line.Contains("\"dead_letter\"", StringComparison.Ordinal)) return bytes;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("dead_letter", out _)
                && doc.RootElement.TryGetProperty("event", out var inner))
                return Encoding.UTF8.GetBytes(inner.GetRawText());
        }
        catch (JsonException)
        {
            // Not JSON: let the parser report it with its line number.
        }
        return bytes;
    }

    private static IEnumerable<ReadOnlyMemory<byte>> SplitLines(byte[] ndjson)
    {
        var start = 0;
        for (var i = 0; i < ndjson.Length; i++)
        {
            if (ndjson[i] != (byte)'\n') continue;
            if (i > start) yield return ndjson.AsMemory(start, i - start);
            start = i + 1;
        }
        if (start < ndjson.Length) yield return ndjson.AsMemory(start);
    }
}
