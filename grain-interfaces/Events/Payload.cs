using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Keystone.Events;

/// <summary>
/// An event payload: a flat JSON object whose values are strings, numbers, booleans, nulls or arrays of those.
/// It is kept as compact UTF-8 JSON, exactly as validated at ingest, because that is what every hop moves and
/// every sink writes; fields are read on demand. Keeping bytes rather than a dictionary makes a stream hop a copy
/// instead of a re-encoding.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class Payload : IEquatable<Payload>
{
    public static readonly Payload Empty = new("{}"u8.ToArray());

    [Id(0)] private readonly byte[] _utf8;

    private Payload(byte[] compactUtf8Object) => _utf8 = compactUtf8Object;

    /// <summary>The payload as compact UTF-8 JSON.</summary>
    public ReadOnlySpan<byte> Utf8 => _utf8;

    public int Length => _utf8.Length;

    /// <summary>Wraps bytes that the caller has already checked to be one compact, flat JSON object.</summary>
    public static Payload FromTrustedCompactJson(byte[] compactUtf8Object) => new(compactUtf8Object);

    /// <summary>Parses and compacts a JSON object. Throws <see cref="FormatException"/> when it is not one.</summary>
    public static Payload Parse(string json) => Parse(Encoding.UTF8.GetBytes(json));

    public static Payload Parse(ReadOnlySpan<byte> utf8Json)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new FormatException("A payload must be a JSON object.");
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(utf8Json.Length);
            using (var writer = new Utf8JsonWriter(buffer, EventJson.WriterOptions))
            {
                writer.WriteStartObject();
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    writer.WritePropertyName(reader.GetString()!);
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                        throw new FormatException("Payload values cannot be nested objects.");
                    CopyValue(ref reader, writer);
                }
                writer.WriteEndObject();
            }
            return new Payload(buffer.WrittenSpan.ToArray());
        }
        catch (JsonException e)
        {
            throw new FormatException($"Invalid payload JSON: {e.Message}", e);
        }
    }

    /// <summary>Builds a payload from CLR values: string, integral and floating numbers, bool, null, or sequences of those.</summary>
    public static Payload Create(params ReadOnlySpan<(string Name, object? Value)> fields)
    {
        var w = Begin(out var state);
        try
        {
            foreach (var (name, value) in fields) WriteField(w, state.Seen, name, value);
            return End(w, state);
        }
        finally { Release(state); }
    }

    // One writer, buffer and name set per thread: a Utf8JsonWriter asks its buffer for 4 KB at its first write, so a
    // fresh writer per payload allocated that much for every graph change and window result (a tenth of the bytes the
    // pipeline allocated at saturation). The flag covers a field enumeration that itself creates a payload.
    [ThreadStatic] private static System.Buffers.ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;
    [ThreadStatic] private static HashSet<string>? t_seen;
    [ThreadStatic] private static bool t_busy;

    public static Payload Create(IEnumerable<KeyValuePair<string, object?>> fields)
    {
        var w = Begin(out var state);
        try
        {
            foreach (var (name, value) in fields) WriteField(w, state.Seen, name, value);
            return End(w, state);
        }
        finally { Release(state); }
    }

    /// <summary>
    /// Starts a payload written field by field, for the pipeline's own high-rate events (graph changes): unlike
    /// <see cref="Create(ReadOnlySpan{ValueTuple{string, object}})"/> nothing is boxed and timestamps are written
    /// without a string. The bytes are the same as <c>Create</c> makes for the same fields (timestamps as
    /// <see cref="EventJson.FormatTimestamp"/> text).
    /// </summary>
    public static Builder Build() => new(Begin(out var state), state);

    public ref struct Builder
    {
        private readonly Utf8JsonWriter _writer;
        private readonly WriteState _state;
        private bool _done;

        internal Builder(Utf8JsonWriter writer, WriteState state) => (_writer, _state) = (writer, state);

        public readonly void String(string name, string? value)
        {
            Name(name);
            if (value is null) _writer.WriteNullValue();
            else _writer.WriteStringValue(value);
        }

        public readonly void Number(string name, long value)
        {
            Name(name);
            _writer.WriteNumberValue(value);
        }

        /// <summary>A number, or null when there is none.</summary>
        public readonly void Number(string name, double? value)
        {
            if (value is { } v && !double.IsFinite(v)) throw new ArgumentException($"Payload field '{name}' is not a finite number.", nameof(value));
            Name(name);
            if (value is { } finite) _writer.WriteNumberValue(finite);
            else _writer.WriteNullValue();
        }

        public readonly void Boolean(string name, bool value)
        {
            Name(name);
            _writer.WriteBooleanValue(value);
        }

        public readonly void Timestamp(string name, DateTimeOffset value)
        {
            Name(name);
            EventJson.WriteTimestampValue(_writer, value);
        }

        public Payload End()
        {
            try
            {
                return Payload.End(_writer, _state);
            }
            finally { Dispose(); }
        }

        /// <summary>Gives the thread's writer back; <see cref="End"/> does it, this covers a builder abandoned by an exception.</summary>
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Release(_state);
        }

        private readonly void Name(string name)
        {
            if (_done) throw new InvalidOperationException("The payload has been built.");
            if (!_state.Seen.Add(name)) throw new ArgumentException($"Payload field '{name}' is given twice.", nameof(name));
            _writer.WritePropertyName(name);
        }
    }

    internal readonly record struct WriteState(System.Buffers.ArrayBufferWriter<byte> Buffer, HashSet<string> Seen, bool Shared);

    private static Utf8JsonWriter Begin(out WriteState state)
    {
        Utf8JsonWriter writer;
        if (t_busy)
        {
            state = new(new System.Buffers.ArrayBufferWriter<byte>(256), new HashSet<string>(StringComparer.Ordinal), Shared: false);
            writer = new Utf8JsonWriter(state.Buffer, EventJson.WriterOptions);
        }
        else
        {
            t_busy = true;
            var buffer = t_buffer ??= new System.Buffers.ArrayBufferWriter<byte>(4096);
            buffer.ResetWrittenCount();
            var seen = t_seen ??= new HashSet<string>(StringComparer.Ordinal);
            seen.Clear();
            state = new(buffer, seen, Shared: true);
            // The envelope's encoder, so a payload has the same bytes whether it was built here or read from the wire.
            writer = t_writer ??= new Utf8JsonWriter(buffer, EventJson.WriterOptions);
            writer.Reset(buffer);
        }
        writer.WriteStartObject();
        return writer;
    }

    private static void WriteField(Utf8JsonWriter writer, HashSet<string> seen, string name, object? value)
    {
        if (!seen.Add(name)) throw new ArgumentException($"Payload field '{name}' is given twice.", "fields");
        writer.WritePropertyName(name);
        WriteClrValue(writer, name, value, allowArray: true);
    }

    private static Payload End(Utf8JsonWriter writer, in WriteState state)
    {
        writer.WriteEndObject();
        writer.Flush();
        if (!state.Shared) writer.Dispose();
        return new Payload(state.Buffer.WrittenSpan.ToArray());
    }

    private static void Release(in WriteState state)
    {
        if (!state.Shared) return;
        t_busy = false;
        // A rare huge payload must not keep its buffer alive on this thread.
        if (t_buffer is { Capacity: > 1 << 20 }) (t_buffer, t_writer) = (null, null);
    }

    /// <summary>Returns a copy with the given fields replaced or added (null removes a field).</summary>
    public Payload With(params (string Name, object? Value)[] changes)
    {
        var fields = ToDictionary();
        foreach (var (name, value) in changes)
        {
            if (value is null) fields.Remove(name);
            else fields[name] = value;
        }
        return Create(fields);
    }

    private static void WriteClrValue(Utf8JsonWriter writer, string name, object? value, bool allowArray)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case short sh: writer.WriteNumberValue(sh); break;
            case byte by: writer.WriteNumberValue(by); break;
            case uint ui: writer.WriteNumberValue(ui); break;
            case ulong ul: writer.WriteNumberValue(ul); break;
            case double d when double.IsFinite(d): writer.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): writer.WriteNumberValue(f); break;
            case decimal m: writer.WriteNumberValue(m); break;
            case Guid g: writer.WriteStringValue(g); break;
            case DateTimeOffset dto: writer.WriteStringValue(dto.ToString("O", CultureInfo.InvariantCulture)); break;
            case JsonElement je when je.ValueKind is not JsonValueKind.Object: je.WriteTo(writer); break;
            case IEnumerable seq when allowArray:
                writer.WriteStartArray();
                foreach (var item in seq) WriteClrValue(writer, name, item, allowArray: false);
                writer.WriteEndArray();
                break;
            default:
                throw new ArgumentException($"Payload field '{name}' has a value of type {value.GetType().Name}; only strings, numbers, booleans, null and arrays of those are allowed.");
        }
    }

    internal static void CopyValue(ref Utf8JsonReader reader, Utf8JsonWriter writer)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartArray:
                writer.WriteStartArray();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                        throw new FormatException("Payload arrays may hold only strings, numbers, booleans and nulls.");
                    CopyValue(ref reader, writer);
                }
                writer.WriteEndArray();
                break;
            case JsonTokenType.String:
                writer.WriteStringValue(reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan);
                break;
            case JsonTokenType.Number:
                writer.WriteRawValue(reader.ValueSpan, skipInputValidation: true);
                break;
            case JsonTokenType.True: writer.WriteBooleanValue(true); break;
            case JsonTokenType.False: writer.WriteBooleanValue(false); break;
            case JsonTokenType.Null: writer.WriteNullValue(); break;
            default: throw new FormatException($"Unexpected JSON token {reader.TokenType}.");
        }
    }

    // Positions the reader on the value of the named field.
    private bool TryFind(string name, out Utf8JsonReader valueReader)
    {
        var reader = new Utf8JsonReader(_utf8);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = reader.ValueTextEquals(name);
            reader.Read();
            if (match)
            {
                valueReader = reader;
                return true;
            }
            reader.Skip();
        }
        valueReader = default;
        return false;
    }

    public bool Has(string name) => TryFind(name, out _);

    /// <summary>The field's string value; null when missing, null or not a string.</summary>
    /// <remarks>Short values come from a shared table (<see cref="Utf8Intern.Payload"/>): ids repeat across events.</remarks>
    public string? GetString(string name) =>
        TryFind(name, out var r) && r.TokenType == JsonTokenType.String ? ReadString(ref r) : null;

    /// <summary>
    /// The field's string value, decoded without the shared table: for values that seldom repeat, such as an ad
    /// session's id (one per showing). In the table such a value would push out ids that do repeat and stay alive,
    /// unused, until its slot is taken: seconds at the ads benchmark's rate, long enough for young collections to copy
    /// it (docs/performance.md, stop 46). A fresh string dies with the event instead.
    /// </summary>
    public string? GetDistinctString(string name) =>
        TryFind(name, out var r) && r.TokenType == JsonTokenType.String ? r.GetString() : null;

    private static string ReadString(ref Utf8JsonReader r) =>
        r.ValueIsEscaped || r.HasValueSequence ? r.GetString()! : Utf8Intern.Payload.GetOrAdd(r.ValueSpan);

    /// <summary>
    /// FNV-1a 64 of the field's string value as UTF-8: what <see cref="FnvHash.Fnv1a64(string, ulong)"/> gives for
    /// <see cref="GetString"/>'s value, without making the string. False when the field is missing or not a string.
    /// </summary>
    public bool TryHashString(string name, out ulong hash)
    {
        hash = 0;
        if (!TryFind(name, out var r) || r.TokenType != JsonTokenType.String) return false;
        hash = r.ValueIsEscaped || r.HasValueSequence ? FnvHash.Fnv1a64(r.GetString()!) : FnvHash.Fnv1a64(r.ValueSpan);
        return true;
    }

    /// <summary>
    /// The fields in one pass, in the order they were written, for a reader that needs several fields of every event
    /// (each <see cref="GetString"/> scans the payload from its start). Names are compared as UTF-8
    /// (<c>"campaign_id"u8</c>), escaped or not; where a name repeats, the getters above read its first occurrence.
    /// </summary>
    public FieldReader Fields() => new(_utf8);

    /// <summary>A forward-only reader over the payload's fields (<see cref="Fields"/>).</summary>
    public ref struct FieldReader
    {
        private Utf8JsonReader _reader;
        private Utf8JsonReader _name;
        private bool _started;

        internal FieldReader(ReadOnlySpan<byte> utf8)
        {
            _reader = new Utf8JsonReader(utf8);
            _reader.Read();
        }

        /// <summary>Moves to the next field; false after the last.</summary>
        public bool MoveNext()
        {
            // An array value is skipped whole; Skip does nothing on a single value.
            if (_started) _reader.Skip();
            _started = true;
            if (!_reader.Read() || _reader.TokenType != JsonTokenType.PropertyName) return false;
            _name = _reader;
            _reader.Read();
            return true;
        }

        /// <summary>Whether the current field is named <paramref name="utf8Name"/>.</summary>
        public bool NameIs(ReadOnlySpan<byte> utf8Name) => _name.ValueTextEquals(utf8Name);

        /// <summary>The current value as <see cref="GetString"/> reads it (short values from the shared table); null when not a string.</summary>
        public string? String
        {
            get
            {
                var r = _reader;
                return r.TokenType == JsonTokenType.String ? ReadString(ref r) : null;
            }
        }

        /// <summary>The current value as <see cref="GetDistinctString"/> reads it; null when not a string.</summary>
        public string? DistinctString => _reader.TokenType == JsonTokenType.String ? _reader.GetString() : null;

        /// <summary>The current value as <see cref="GetInt64"/> reads it; null when not an integer.</summary>
        public long? Int64 => _reader.TokenType == JsonTokenType.Number && _reader.TryGetInt64(out var v) ? v : null;
    }

    public bool TryGetInt64(string name, out long value)
    {
        value = 0;
        return TryFind(name, out var r) && r.TokenType == JsonTokenType.Number && r.TryGetInt64(out value);
    }

    public long? GetInt64(string name) => TryGetInt64(name, out var v) ? v : null;

    public bool TryGetDouble(string name, out double value)
    {
        value = 0;
        return TryFind(name, out var r) && r.TokenType == JsonTokenType.Number && r.TryGetDouble(out value);
    }

    public bool? GetBoolean(string name) =>
        TryFind(name, out var r) ? r.TokenType switch { JsonTokenType.True => true, JsonTokenType.False => false, _ => null } : null;

    public IReadOnlyList<string> GetStringArray(string name)
    {
        if (!TryFind(name, out var r)) return [];
        if (r.TokenType == JsonTokenType.String) return [ReadString(ref r)];
        if (r.TokenType != JsonTokenType.StartArray) return [];
        var items = new List<string>();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
            if (r.TokenType == JsonTokenType.String) items.Add(ReadString(ref r));
        return items;
    }

    /// <summary>The field's value as text (numbers and booleans as written), or null when missing or null.</summary>
    public string? GetText(string name)
    {
        if (!TryFind(name, out var r)) return null;
        return r.TokenType switch
        {
            JsonTokenType.String => ReadString(ref r),
            JsonTokenType.Number => Encoding.UTF8.GetString(r.ValueSpan),
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            _ => null,
        };
    }

    public IReadOnlyList<string> FieldNames
    {
        get
        {
            var names = new List<string>();
            var reader = new Utf8JsonReader(_utf8);
            reader.Read();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                names.Add(reader.GetString()!);
                reader.Read();
                reader.Skip();
            }
            return names;
        }
    }

    /// <summary>The payload as CLR values: string, long, double, bool, null, or object?[] for arrays.</summary>
    public Dictionary<string, object?> ToDictionary()
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(_utf8);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            result[name] = ReadClrValue(ref reader);
        }
        return result;
    }

    private static object? ReadClrValue(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String: return reader.GetString();
            case JsonTokenType.Number: return reader.TryGetInt64(out var l) ? (object)l : reader.GetDouble();
            case JsonTokenType.True: return true;
            case JsonTokenType.False: return false;
            case JsonTokenType.StartArray:
                var items = new List<object?>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) items.Add(ReadClrValue(ref reader));
                return items.ToArray();
            default: return null;
        }
    }

    /// <summary>
    /// Rebuilds the payload field by field: <paramref name="decide"/> sees each field's name and its value as text
    /// (null for null and arrays) and keeps, drops or replaces it with a string. Returns this instance when nothing changed.
    /// </summary>
    public Payload Rewrite(Func<string, string?, PayloadEdit> decide)
    {
        var changed = false;
        var writer = EventJson.RentWriter(out var buffer);
        writer.WriteStartObject();
        var reader = new Utf8JsonReader(_utf8);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            var text = reader.TokenType switch
            {
                JsonTokenType.String => reader.GetString(),
                JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
                JsonTokenType.True => "true",
                JsonTokenType.False => "false",
                _ => null,
            };
            var edit = decide(name, text);
            switch (edit.Kind)
            {
                case PayloadEditKind.Drop:
                    changed = true;
                    reader.Skip();
                    break;
                case PayloadEditKind.Replace:
                    changed = true;
                    reader.Skip();
                    writer.WriteString(name, edit.Replacement);
                    break;
                default:
                    writer.WritePropertyName(name);
                    CopyValue(ref reader, writer);
                    break;
            }
        }
        writer.WriteEndObject();
        writer.Flush();
        return changed ? new Payload(buffer.WrittenSpan.ToArray()) : this;
    }

    public bool Equals(Payload? other) => other is not null && _utf8.AsSpan().SequenceEqual(other._utf8);
    public override bool Equals(object? obj) => Equals(obj as Payload);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_utf8);
        return hash.ToHashCode();
    }

    public override string ToString() => Encoding.UTF8.GetString(_utf8);
}

public enum PayloadEditKind
{
    Keep,
    Drop,
    Replace,
}

public readonly record struct PayloadEdit(PayloadEditKind Kind, string? Replacement = null)
{
    public static readonly PayloadEdit Keep = new(PayloadEditKind.Keep);
    public static readonly PayloadEdit Drop = new(PayloadEditKind.Drop);
    public static PayloadEdit Replace(string value) => new(PayloadEditKind.Replace, value);
}
