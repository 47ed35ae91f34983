using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Keystone.Schemas;

namespace Keystone.Events;

/// <summary>One event read from JSON: the event, or the first problem found (with the raw event id for the report).</summary>
public readonly record struct ParsedEvent(KeystoneEvent? Event, string? RawEventId, ValidationError? Error);

/// <summary>
/// The envelope's wire form (snake_case, as in docs/architecture.md, Envelope). Reading is a single forward pass with
/// <see cref="Utf8JsonReader"/> that keeps going after the first bad field, so a rejection can still name the
/// event by its <c>event_id</c>.
/// </summary>
public static class EventJson
{
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        // The default encoder escapes '+' in offsets and every non-ASCII letter; events are not HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    public static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 16 };

    private const ulong FieldEventId = 1, FieldType = 2, FieldTimestamp = 4, FieldVersion = 8, FieldSource = 16, FieldPayload = 32, FieldMetadata = 64;
    private const string EnvelopeFields = "event_id, event_type, timestamp, version, source, payload, metadata";

    private static readonly string[] TimestampFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ssK",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd'T'HH:mmK",
    ];

    /// <summary>ISO-8601 with an explicit offset: <c>Z</c> or <c>±hh:mm</c>. Local times without an offset are refused.</summary>
    public static bool TryParseTimestamp(string text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length < 17 || text.Length > 40) return false;
        var last = text[^1];
        var hasOffset = last is 'Z' or 'z' || (text[^6] is '+' or '-' && text[^3] == ':');
        // The "K" specifier only knows upper-case Z.
        if (last == 'z') text = string.Concat(text.AsSpan(0, text.Length - 1), "Z");
        return hasOffset && DateTimeOffset.TryParseExact(text, TimestampFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out value);
    }

    private const string UtcFormat = "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'";
    private const string OffsetFormat = "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz";

    public static string FormatTimestamp(DateTimeOffset t) =>
        t.Offset == TimeSpan.Zero
            ? t.UtcDateTime.ToString(UtcFormat, CultureInfo.InvariantCulture)
            : t.ToString(OffsetFormat, CultureInfo.InvariantCulture);

    /// <summary>Writes the timestamp as <see cref="FormatTimestamp"/> would, without a string: every event is written
    /// this way at least once (size check, archive), so the string was an object per event per hop.</summary>
    public static void WriteTimestamp(Utf8JsonWriter w, ReadOnlySpan<byte> name, DateTimeOffset t)
    {
        w.WritePropertyName(name);
        WriteTimestampValue(w, t);
    }

    public static void WriteTimestampValue(Utf8JsonWriter w, DateTimeOffset t)
    {
        Span<char> text = stackalloc char[40];
        var done = t.Offset == TimeSpan.Zero
            ? t.UtcDateTime.TryFormat(text, out var written, UtcFormat, CultureInfo.InvariantCulture)
            : t.TryFormat(text, out written, OffsetFormat, CultureInfo.InvariantCulture);
        if (done) w.WriteStringValue(text[..written]);
        else w.WriteStringValue(FormatTimestamp(t));
    }

    public static void Write(Utf8JsonWriter w, KeystoneEvent e)
    {
        w.WriteStartObject();
        w.WriteString("event_id"u8, e.EventId);
        w.WriteString("event_type"u8, e.EventType);
        WriteTimestamp(w, "timestamp"u8, e.Timestamp);
        w.WriteString("version"u8, e.Version);
        w.WriteStartObject("source"u8);
        w.WriteString("service"u8, e.Source.Service);
        if (e.Source.DeviceType is not null) w.WriteString("device_type"u8, e.Source.DeviceType);
        if (e.Source.Region is not null) w.WriteString("region"u8, e.Source.Region);
        w.WriteEndObject();
        w.WritePropertyName("payload"u8);
        w.WriteRawValue(e.Payload.Utf8, skipInputValidation: true);
        w.WriteStartObject("metadata"u8);
        foreach (var (k, v) in e.Metadata) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // Utf8JsonWriter asks its buffer for worst-case room (six bytes per character, for escaping), so a fresh
    // buffer per event grows several times; one reused buffer and writer per thread allocate only the result.
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    internal static Utf8JsonWriter RentWriter(out ArrayBufferWriter<byte> buffer)
    {
        buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);
        return writer;
    }

    public static byte[] SerializeToUtf8(KeystoneEvent e)
    {
        var w = RentWriter(out var buffer);
        Write(w, e);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public static string Serialize(KeystoneEvent e) => Encoding.UTF8.GetString(SerializeToUtf8(e));

    /// <summary>Writes the event as one line of compact JSON and a newline, through this thread's buffer (no array per
    /// event); returns the bytes written.</summary>
    public static int WriteLine(Stream output, KeystoneEvent e)
    {
        var w = RentWriter(out var buffer);
        Write(w, e);
        w.Flush();
        output.Write(buffer.WrittenSpan);
        output.WriteByte((byte)'\n');
        return buffer.WrittenCount + 1;
    }

    /// <summary><see cref="WriteLine(Stream, KeystoneEvent)"/> for an event still in its batch record (length prefix
    /// included), written from the record's bytes (<see cref="Ingest.EventBatchCodec.WriteJson"/>).</summary>
    public static int WriteRecordLine(Stream output, ReadOnlySpan<byte> record)
    {
        var w = RentWriter(out var buffer);
        Ingest.EventBatchCodec.WriteJson(w, record);
        w.Flush();
        output.Write(buffer.WrittenSpan);
        output.WriteByte((byte)'\n');
        return buffer.WrittenCount + 1;
    }

    /// <summary>Writes events as newline-delimited JSON.</summary>
    public static void WriteNdjson(IBufferWriter<byte> output, IEnumerable<KeystoneEvent> events)
    {
        using var w = new Utf8JsonWriter(output, WriterOptions);
        foreach (var e in events)
        {
            Write(w, e);
            w.Flush();
            w.Reset(output);
            output.Write("\n"u8);
        }
    }

    /// <summary>
    /// A bound that <see cref="SizeOf"/> never exceeds, from lengths alone: every string escaped at six bytes a
    /// character (the worst <c>\uXXXX</c>), the payload as it is, and the envelope's names, punctuation, id and
    /// timestamp within <see cref="EnvelopeBound"/>. Validation writes an event out only when this bound is over the
    /// limit, instead of for every event (about 2 % of the silo's CPU in the ads benchmark, docs/performance.md, stop 51).
    /// </summary>
    public static long SizeBound(KeystoneEvent e)
    {
        long size = EnvelopeBound + e.Payload.Length
                    + StringBound(e.EventType) + StringBound(e.Version) + StringBound(e.Source.Service)
                    + StringBound(e.Source.DeviceType) + StringBound(e.Source.Region);
        foreach (var (k, v) in e.Metadata) size += StringBound(k) + StringBound(v);
        return size;
    }

    // The property names and punctuation of the envelope (about 130 bytes), a 36-character id and a timestamp of at
    // most 33 characters, with room to spare.
    internal const int EnvelopeBound = 256;

    // Quotes, a colon or comma, and six bytes per UTF-16 unit.
    private static long StringBound(string? s) => s is null ? 0 : 6L * s.Length + 4;

    /// <summary>The event's size as compact UTF-8 JSON.</summary>
    public static int SizeOf(KeystoneEvent e)
    {
        var w = RentWriter(out var buffer);
        Write(w, e);
        w.Flush();
        return buffer.WrittenCount;
    }

    /// <summary>Parses one event; throws <see cref="FormatException"/> with the field and reason when it is not a well-formed envelope.</summary>
    public static KeystoneEvent Parse(string json) => Parse(Encoding.UTF8.GetBytes(json));

    public static KeystoneEvent Parse(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8, ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new FormatException("An event must be a JSON object.");
            var parsed = ReadEvent(ref reader);
            return parsed.Event ?? throw new FormatException(parsed.Error!.Message);
        }
        catch (JsonException e)
        {
            throw new FormatException($"Malformed JSON: {e.Message}", e);
        }
    }

    /// <summary>Reads one envelope; <paramref name="reader"/> must be on its <c>StartObject</c> and ends on its <c>EndObject</c>.</summary>
    public static ParsedEvent ReadEvent(ref Utf8JsonReader reader)
    {
        ValidationError? error = null;
        string? rawId = null;
        Guid id = default;
        string? type = null, version = null;
        DateTimeOffset timestamp = default;
        EventSource? source = null;
        Payload? payload = null;
        EventMetadata metadata = EventMetadata.Empty;
        ulong seen = 0;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            ulong field;
            if (reader.ValueTextEquals("event_id"u8)) field = FieldEventId;
            else if (reader.ValueTextEquals("event_type"u8)) field = FieldType;
            else if (reader.ValueTextEquals("timestamp"u8)) field = FieldTimestamp;
            else if (reader.ValueTextEquals("version"u8)) field = FieldVersion;
            else if (reader.ValueTextEquals("source"u8)) field = FieldSource;
            else if (reader.ValueTextEquals("payload"u8)) field = FieldPayload;
            else if (reader.ValueTextEquals("metadata"u8)) field = FieldMetadata;
            else
            {
                error ??= new(SchemaRegistry.Truncate(reader.GetString()!), $"is not an envelope field (fields: {EnvelopeFields})");
                reader.Read();
                reader.Skip();
                continue;
            }
            if ((seen & field) != 0)
            {
                error ??= new(FieldName(field), "appears more than once");
                reader.Read();
                reader.Skip();
                continue;
            }
            seen |= field;
            reader.Read();

            switch (field)
            {
                case FieldEventId:
                    if (reader.TokenType != JsonTokenType.String) { error ??= TypeError("event_id", "a UUID string", reader.TokenType); reader.Skip(); break; }
                    if (reader.ValueIsEscaped || reader.ValueSpan.Length != 36 || !reader.TryGetGuid(out id) || id == Guid.Empty)
                    {
                        rawId = reader.GetString();
                        id = default;
                        error ??= new("event_id", $"'{SchemaRegistry.Truncate(rawId!)}' is not a UUID (expected the 8-4-4-4-12 hex form)");
                    }
                    break;
                case FieldType:
                    if (reader.TokenType != JsonTokenType.String) { error ??= TypeError("event_type", "string", reader.TokenType); reader.Skip(); break; }
                    type = ReadInterned(ref reader);
                    if (string.IsNullOrEmpty(type)) error ??= new("event_type", "must not be empty");
                    break;
                case FieldTimestamp:
                    if (reader.TokenType != JsonTokenType.String) { error ??= TypeError("timestamp", "an ISO-8601 string", reader.TokenType); reader.Skip(); break; }
                    if (!reader.ValueIsEscaped && HasOffset(reader.ValueSpan) && reader.TryGetDateTimeOffset(out timestamp)) break;
                    var ts = reader.GetString()!;
                    if (!TryParseTimestamp(ts, out timestamp))
                        error ??= new("timestamp", $"'{SchemaRegistry.Truncate(ts)}' is not an ISO-8601 date-time with an offset (e.g. 2024-12-26T12:00:00Z)");
                    break;
                case FieldVersion:
                    if (reader.TokenType != JsonTokenType.String) { error ??= TypeError("version", "string", reader.TokenType); reader.Skip(); break; }
                    version = ReadInterned(ref reader);
                    if (string.IsNullOrEmpty(version)) error ??= new("version", "must not be empty");
                    break;
                case FieldSource:
                    if (reader.TokenType != JsonTokenType.StartObject) { error ??= TypeError("source", "an object", reader.TokenType); reader.Skip(); break; }
                    source = ReadSource(ref reader, ref error);
                    break;
                case FieldPayload:
                    if (reader.TokenType != JsonTokenType.StartObject) { error ??= TypeError("payload", "an object", reader.TokenType); reader.Skip(); break; }
                    payload = ReadPayload(ref reader, ref error);
                    break;
                case FieldMetadata:
                    if (reader.TokenType == JsonTokenType.Null) break;
                    if (reader.TokenType != JsonTokenType.StartObject) { error ??= TypeError("metadata", "an object of strings", reader.TokenType); reader.Skip(); break; }
                    metadata = ReadMetadata(ref reader, ref error);
                    break;
            }
        }

        if (error is null)
        {
            foreach (var required in new[] { FieldEventId, FieldType, FieldTimestamp, FieldVersion, FieldSource, FieldPayload })
            {
                if ((seen & required) == 0)
                {
                    error = new(FieldName(required), "required field is missing");
                    break;
                }
            }
        }

        if (error is not null) return new ParsedEvent(null, rawId ?? (id == default ? null : id.ToString("D")), error);
        return new ParsedEvent(new KeystoneEvent(id, type!, timestamp, version!, source!, payload!, metadata), rawId, null);
    }

    private static string ReadInterned(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped ? reader.GetString()! : Utf8Intern.Envelope.GetOrAdd(reader.ValueSpan);

    private static bool HasOffset(ReadOnlySpan<byte> text) =>
        text.Length >= 17 && (text[^1] is (byte)'Z' or (byte)'z' || (text[^6] is (byte)'+' or (byte)'-' && text[^3] == (byte)':'));

    private static string FieldName(ulong field) => field switch
    {
        FieldEventId => "event_id",
        FieldType => "event_type",
        FieldTimestamp => "timestamp",
        FieldVersion => "version",
        FieldSource => "source",
        FieldPayload => "payload",
        _ => "metadata",
    };

    private static ValidationError TypeError(string field, string expected, JsonTokenType got) =>
        new(field, $"expected {expected}, got {Describe(got)}");

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.StartArray => "array",
        JsonTokenType.StartObject => "object",
        _ => token.ToString(),
    };

    private static EventSource? ReadSource(ref Utf8JsonReader reader, ref ValidationError? error)
    {
        string? service = null, device = null, region = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var which = reader.ValueTextEquals("service"u8) ? 0 : reader.ValueTextEquals("device_type"u8) ? 1 : reader.ValueTextEquals("region"u8) ? 2 : -1;
            if (which < 0)
            {
                error ??= new($"source.{SchemaRegistry.Truncate(reader.GetString()!)}", "is not a field of source (fields: service, device_type, region)");
                reader.Read();
                reader.Skip();
                continue;
            }
            var name = which switch { 0 => "source.service", 1 => "source.device_type", _ => "source.region" };
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null && which != 0) continue;
            if (reader.TokenType != JsonTokenType.String)
            {
                error ??= TypeError(name, "string", reader.TokenType);
                reader.Skip();
                continue;
            }
            var value = ReadInterned(ref reader);
            switch (which)
            {
                case 0: service = value; break;
                case 1: device = value; break;
                default: region = value; break;
            }
        }
        if (string.IsNullOrWhiteSpace(service))
        {
            error ??= new("source.service", "required field is missing");
            return null;
        }
        return new EventSource(service, device, region);
    }

    private static EventMetadata ReadMetadata(ref Utf8JsonReader reader, ref ValidationError? error)
    {
        List<KeyValuePair<string, string>>? entries = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = ReadInterned(ref reader);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                error ??= TypeError($"metadata.{SchemaRegistry.Truncate(key)}", "string", reader.TokenType);
                reader.Skip();
                continue;
            }
            (entries ??= []).Add(new(key, reader.GetString()!));
        }
        return entries is null ? EventMetadata.Empty : EventMetadata.From(entries);
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_payloadBuffer;

    // Copies the payload object into compact form, refusing nested objects so that every payload stays flat.
    private static Payload? ReadPayload(ref Utf8JsonReader reader, ref ValidationError? error)
    {
        var buffer = t_payloadBuffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var ok = true;
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // The name's bytes stay valid after the reader moves on; they are decoded only for a message.
                var rawName = reader.ValueIsEscaped ? default : reader.ValueSpan;
                string? escapedName = null;
                if (reader.ValueIsEscaped && !TryGetString(ref reader, out escapedName))
                {
                    error ??= new("payload", $"a field name {LoneSurrogate}");
                    ok = false;
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                if (escapedName is not null) w.WritePropertyName(escapedName);
                else w.WritePropertyName(rawName);
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    error ??= new("payload", "nested objects are not allowed; payload values are strings, numbers, booleans, null or arrays of those");
                    ok = false;
                    reader.Skip();
                    continue;
                }
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    w.WriteStartArray();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                        {
                            error ??= new("payload", "arrays may hold only strings, numbers, booleans and nulls");
                            ok = false;
                            reader.Skip();
                            continue;
                        }
                        if (!WriteScalar(ref reader, w))
                        {
                            error ??= new($"payload.{escapedName ?? Encoding.UTF8.GetString(rawName)}", LoneSurrogate);
                            ok = false;
                        }
                    }
                    w.WriteEndArray();
                    continue;
                }
                if (!WriteScalar(ref reader, w))
                {
                    error ??= new($"payload.{escapedName ?? Encoding.UTF8.GetString(rawName)}", LoneSurrogate);
                    ok = false;
                }
            }
            w.WriteEndObject();
        }
        return ok ? Payload.FromTrustedCompactJson(buffer.WrittenSpan.ToArray()) : null;
    }

    private const string LoneSurrogate = "holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape), which is not text";

    // False when a string escapes half a surrogate pair: there is no string to copy, and nothing else can use it.
    private static bool WriteScalar(ref Utf8JsonReader reader, Utf8JsonWriter w)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                if (!reader.ValueIsEscaped) w.WriteStringValue(reader.ValueSpan);
                else if (TryGetString(ref reader, out var value)) w.WriteStringValue(value);
                else return false;
                break;
            case JsonTokenType.Number: w.WriteRawValue(reader.ValueSpan, skipInputValidation: true); break;
            case JsonTokenType.True: w.WriteBooleanValue(true); break;
            case JsonTokenType.False: w.WriteBooleanValue(false); break;
            default: w.WriteNullValue(); break;
        }
        return true;
    }

    private static bool TryGetString(ref Utf8JsonReader reader, out string? value)
    {
        try
        {
            value = reader.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = null;
            return false;
        }
    }
}
