using System.Text.Json;
using Keystone.Events;
using Keystone.Schemas;

namespace Keystone.Ingest;

public enum BodyFormat : byte
{
    /// <summary>A JSON array of events, a single event object, or NDJSON — decided by the first character and line count.</summary>
    Auto = 0,
    JsonArray = 1,
    Ndjson = 2,

    /// <summary>The SDK's form: <see cref="EventBatchCodec"/> bytes (typed events, no JSON to parse).</summary>
    Binary = 3,
}

/// <summary>A body split into valid events (with their position in the body) and rejections.</summary>
public sealed class ParsedBatch
{
    public List<KeystoneEvent> Events { get; } = [];
    public List<int> Indexes { get; } = [];
    public List<EventRejection> Rejections { get; } = [];
    public int Total { get; internal set; }

    /// <summary>Set when the body as a whole is unusable (malformed JSON array, not JSON at all); nothing was accepted.</summary>
    public string? BodyError { get; internal set; }
}

/// <summary>
/// Splits a request body into events and validates each one. The same code reads REST bodies, SDK batches and
/// CLI files, so every entry point rejects the same things with the same words.
/// </summary>
public static class EventBatchParser
{
    public static ParsedBatch Parse(ReadOnlySpan<byte> body, BodyFormat format, SchemaRegistry registry, ValidationLimits? limits = null, DateTimeOffset? now = null)
    {
        limits ??= ValidationLimits.Default;
        var clock = now ?? DateTimeOffset.UtcNow;
        var result = new ParsedBatch();

        // A UTF-8 byte order mark is legal at the start of a JSON text.
        if (body.StartsWith("\uFEFF"u8)) body = body[3..];
        var first = FirstNonWhitespace(body);
        if (first < 0)
        {
            result.BodyError = "the body is empty; send a JSON array of events, a single event object, or NDJSON (one event per line)";
            return result;
        }

        if (format == BodyFormat.Binary)
        {
            ParseBinary(body, registry, limits, clock, result);
            return result;
        }

        if (format == BodyFormat.Auto)
            format = body[first] == (byte)'[' || !HasSecondRecord(body[first..]) ? BodyFormat.JsonArray : BodyFormat.Ndjson;

        if (format == BodyFormat.JsonArray) ParseArray(body, registry, limits, clock, result);
        else ParseNdjson(body, registry, limits, clock, result);
        return result;
    }

    private static void ParseArray(ReadOnlySpan<byte> body, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        var reader = new Utf8JsonReader(body, EventJson.ReaderOptions);
        try
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                // A single event object is a batch of one.
                ReadOne(ref reader, 0, registry, limits, now, result);
                if (reader.Read())
                    result.BodyError = $"unexpected content after the event object at byte {reader.TokenStartIndex}";
                result.Total = 1;
                return;
            }
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                result.BodyError = $"expected a JSON array of events or an event object, got {reader.TokenType}";
                return;
            }
            var index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    result.Rejections.Add(new EventRejection(index, null, "event", $"expected a JSON object, got {reader.TokenType}"));
                    reader.Skip();
                }
                else
                {
                    ReadOne(ref reader, index, registry, limits, now, result);
                }
                index++;
            }
            result.Total = index;
            if (reader.Read())
                result.BodyError = $"unexpected content after the array at byte {reader.TokenStartIndex}";
        }
        catch (JsonException e)
        {
            result.BodyError = $"malformed JSON: {Clean(e)}";
        }
        catch (InvalidOperationException e)
        {
            // An envelope string escaping half a surrogate pair: the reader cannot resume inside the array.
            result.BodyError = $"malformed JSON: {e.Message}";
        }
        if (result.BodyError is not null)
        {
            result.Events.Clear();
            result.Indexes.Clear();
            result.Rejections.Clear();
        }
    }

    // The binary form arrives already typed, but from a client: every event is validated as if it were JSON, and
    // its payload must be the compact single-line object the rest of the pipeline relies on.
    private static void ParseBinary(ReadOnlySpan<byte> body, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        KeystoneEvent[] events;
        try
        {
            events = EventBatchCodec.Decode(body);
        }
        catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException or ArgumentException or OverflowException or FormatException)
        {
            result.BodyError = $"malformed binary batch: {e.Message}";
            return;
        }
        ValidateDecoded(events, registry, limits, now, result);
    }

    /// <summary>Validates events that arrived in binary form (already decoded), recording each one's fate.</summary>
    public static ParsedBatch ValidateDecoded(IReadOnlyList<KeystoneEvent> events, SchemaRegistry registry, ValidationLimits? limits = null, DateTimeOffset? now = null)
    {
        var result = new ParsedBatch();
        ValidateDecoded(events, registry, limits ?? ValidationLimits.Default, now ?? DateTimeOffset.UtcNow, result);
        return result;
    }

    private static void ValidateDecoded(IReadOnlyList<KeystoneEvent> events, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            if (e.Payload.Utf8.IndexOfAny((byte)'\n', (byte)'\r') >= 0)
            {
                result.Rejections.Add(new EventRejection(i, e.EventId.ToString("D"), "payload", "payload: must be compact JSON on one line"));
                continue;
            }
            var error = registry.Validate(e, limits, sizeBytes: null, now);
            if (error is not null)
            {
                result.Rejections.Add(new EventRejection(i, e.EventId.ToString("D"), error.Field, error.Message));
                continue;
            }
            result.Events.Add(e);
            result.Indexes.Add(i);
        }
        result.Total = events.Count;
    }

    private static void ReadOne(ref Utf8JsonReader reader, int index, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        var start = reader.TokenStartIndex;
        var parsed = EventJson.ReadEvent(ref reader);
        var size = (int)(reader.BytesConsumed - start);
        Accept(parsed, index, size, registry, limits, now, result);
    }

    private static void ParseNdjson(ReadOnlySpan<byte> body, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        var index = 0;
        var lineNumber = 0;
        while (!body.IsEmpty)
        {
            var nl = body.IndexOf((byte)'\n');
            var line = nl < 0 ? body : body[..nl];
            body = nl < 0 ? [] : body[(nl + 1)..];
            lineNumber++;
            if (FirstNonWhitespace(line) < 0) continue;

            var reader = new Utf8JsonReader(line, EventJson.ReaderOptions);
            try
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    result.Rejections.Add(new EventRejection(index, null, "event", $"line {lineNumber}: expected a JSON object, got {reader.TokenType}"));
                }
                else
                {
                    var parsed = EventJson.ReadEvent(ref reader);
                    if (reader.Read())
                        result.Rejections.Add(new EventRejection(index, parsed.RawEventId, "event", $"line {lineNumber}: unexpected content after the event object"));
                    else
                        Accept(parsed, index, (int)reader.BytesConsumed, registry, limits, now, result);
                }
            }
            catch (JsonException e)
            {
                result.Rejections.Add(new EventRejection(index, null, "event", $"line {lineNumber}: malformed JSON: {Clean(e)}"));
            }
            catch (InvalidOperationException e)
            {
                result.Rejections.Add(new EventRejection(index, null, "event", $"line {lineNumber}: malformed JSON: {e.Message}"));
            }
            index++;
        }
        result.Total = index;
        if (index == 0)
            result.BodyError = "the body holds no events";
    }

    private static void Accept(ParsedEvent parsed, int index, int size, SchemaRegistry registry, ValidationLimits limits, DateTimeOffset now, ParsedBatch result)
    {
        if (parsed.Error is { } parseError)
        {
            result.Rejections.Add(new EventRejection(index, parsed.RawEventId, parseError.Field, parseError.Message));
            return;
        }
        var e = parsed.Event!;
        // The size that counts is the event's own JSON as sent, before compaction.
        var error = registry.Validate(e, limits, size, now);
        if (error is not null)
        {
            result.Rejections.Add(new EventRejection(index, e.EventId.ToString("D"), error.Field, error.Message));
            return;
        }
        result.Events.Add(e);
        result.Indexes.Add(index);
    }

    private static bool HasSecondRecord(ReadOnlySpan<byte> body)
    {
        var nl = body.IndexOf((byte)'\n');
        return nl >= 0 && FirstNonWhitespace(body[(nl + 1)..]) >= 0 && body[..nl].TrimEnd(" \t\r"u8).EndsWith("}"u8);
    }

    private static int FirstNonWhitespace(ReadOnlySpan<byte> span)
    {
        for (var i = 0; i < span.Length; i++)
            if (span[i] is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return i;
        return -1;
    }

    // JsonException messages carry a "Path: $ | LineNumber: 0 | BytePositionInLine: 3." tail; the line and byte are what a user needs.
    private static string Clean(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        return $"{message.TrimEnd('.')} (line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1})";
    }
}
