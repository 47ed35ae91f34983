using System.Text;
using System.Text.Json;
using Keystone.Events;

namespace Keystone.Schemas;

/// <summary>Why one event was refused: the envelope or payload field at fault and the reason, in words.</summary>
[GenerateSerializer, Immutable]
public sealed record ValidationError([property: Id(0)] string Field, [property: Id(1)] string Reason)
{
    public string Message => $"{Field}: {Reason}";
    public override string ToString() => Message;
}

/// <summary>Limits applied on top of the schemas.</summary>
public sealed record ValidationLimits
{
    public static readonly ValidationLimits Default = new();

    /// <summary>An event's size as UTF-8 JSON. Must stay below the stream provider's message limit.</summary>
    public int MaxEventBytes { get; init; } = 32 * 1024;

    /// <summary>How far in the future an event time may lie; null disables the check.</summary>
    public TimeSpan? MaxFutureSkew { get; init; } = TimeSpan.FromHours(1);

    public int MaxMetadataEntries { get; init; } = 32;
    public int MaxMetadataValueLength { get; init; } = 1024;

    /// <summary>Whether events may carry <see cref="LakeReplayKey"/>: only the archive's own replay may.</summary>
    public bool AllowLakeReplayMarker { get; init; }

    /// <summary>Marks an event the archive's replay publishes again through ingest: it is in the lake already, and
    /// the sealed fronting log leaves it out of the lake. Reserved: from a producer it would keep events out of the lake.</summary>
    public const string LakeReplayKey = "replayed_from_lake";
}

/// <summary>
/// The registered event schemas, keyed by type and version. Validation is written against the compact payload
/// bytes with a forward-only reader and allocates only on the error path, so it costs well under a microsecond
/// for the seed's events (see <c>bench</c>).
/// </summary>
public sealed class SchemaRegistry
{
    private readonly Dictionary<string, Dictionary<string, EventSchema>> _byType;

    public SchemaRegistry(IEnumerable<EventSchema> schemas)
    {
        _byType = new Dictionary<string, Dictionary<string, EventSchema>>(StringComparer.Ordinal);
        foreach (var s in schemas)
        {
            if (!_byType.TryGetValue(s.EventType, out var versions))
                _byType[s.EventType] = versions = new Dictionary<string, EventSchema>(StringComparer.Ordinal);
            if (!versions.TryAdd(s.Version, s))
                throw new SchemaLoadException($"Schema {s.EventType} {s.Version} is registered twice ({versions[s.Version].Origin} and {s.Origin}).");
        }
    }

    private static readonly Lazy<SchemaRegistry> EmbeddedRegistry = new(() => new SchemaRegistry(SchemaLoader.LoadEmbedded()));

    /// <summary>The schemas shipped with this build.</summary>
    public static SchemaRegistry Embedded => EmbeddedRegistry.Value;

    /// <summary>The embedded schemas, plus (and overriding) those found in <paramref name="directory"/> when given.</summary>
    public static SchemaRegistry Load(string? directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) return Embedded;
        var extra = SchemaLoader.LoadDirectory(directory);
        var merged = SchemaLoader.LoadEmbedded().ToDictionary(s => (s.EventType, s.Version));
        foreach (var s in extra) merged[(s.EventType, s.Version)] = s;
        return new SchemaRegistry(merged.Values);
    }

    public IEnumerable<string> EventTypes => _byType.Keys.Order(StringComparer.Ordinal);

    public IEnumerable<EventSchema> All =>
        _byType.Values.SelectMany(v => v.Values).OrderBy(s => s.EventType, StringComparer.Ordinal).ThenBy(s => s.Version, VersionComparer.Instance);

    public IReadOnlyList<EventSchema> Versions(string eventType) =>
        _byType.TryGetValue(eventType, out var v) ? v.Values.OrderBy(s => s.Version, VersionComparer.Instance).ToArray() : [];

    public bool TryGet(string eventType, string version, out EventSchema schema)
    {
        schema = null!;
        return _byType.TryGetValue(eventType, out var versions) && versions.TryGetValue(version, out schema!);
    }

    /// <summary>Returns a registry with one more schema; the receiver is left unchanged.</summary>
    public SchemaRegistry With(EventSchema schema) =>
        new(All.Where(s => !(s.EventType == schema.EventType && s.Version == schema.Version)).Append(schema));

    /// <summary>Checks an event against its schema and the limits. Returns null when the event is valid.</summary>
    /// <param name="sizeBytes">The event's size as JSON, when the caller already knows it.</param>
    public ValidationError? Validate(KeystoneEvent e, ValidationLimits? limits = null, int? sizeBytes = null, DateTimeOffset? now = null)
    {
        limits ??= ValidationLimits.Default;

        // Size first: it is the one limit that protects everything downstream, whatever else is wrong.
        if (e.Payload is not null && e.Source is not null && e.EventType is not null && e.Version is not null)
        {
            // Written out only when its bound says it could be too large: the exact size is what the refusal reports.
            var size = sizeBytes ?? (EventJson.SizeBound(e) <= limits.MaxEventBytes ? null : EventJson.SizeOf(e));
            if (size > limits.MaxEventBytes)
                return new("event", $"is {size} bytes as JSON; the limit is {limits.MaxEventBytes} bytes");
        }

        if (e.EventId == Guid.Empty) return new("event_id", "must be a UUID other than the nil UUID");
        if (string.IsNullOrEmpty(e.EventType)) return new("event_type", "is required");
        if (string.IsNullOrEmpty(e.Version)) return new("version", "is required");
        if (e.Source is null || string.IsNullOrWhiteSpace(e.Source.Service)) return new("source.service", "is required");
        if (e.Source.Service.Length > 128) return new("source.service", $"is {e.Source.Service.Length} characters long; at most 128 are allowed");
        if (e.Source.DeviceType is { Length: > 64 }) return new("source.device_type", "is longer than 64 characters");
        if (e.Source.Region is { Length: > 64 }) return new("source.region", "is longer than 64 characters");
        if (e.Timestamp == default) return new("timestamp", "is required");
        if (limits.MaxFutureSkew is { } skew && e.Timestamp > (now ?? DateTimeOffset.UtcNow) + skew)
            return new("timestamp", $"{e.Timestamp:O} is more than {skew} in the future");
        if (e.Metadata is not null)
        {
            if (e.Metadata.Count > limits.MaxMetadataEntries)
                return new("metadata", $"has {e.Metadata.Count} entries; at most {limits.MaxMetadataEntries} are allowed");
            foreach (var (k, v) in e.Metadata)
            {
                if (k.Length is 0 or > 64) return new("metadata", $"key '{Truncate(k)}' must be 1 to 64 characters long");
                if (k == ValidationLimits.LakeReplayKey && !limits.AllowLakeReplayMarker)
                    return new($"metadata.{k}", "is reserved for the archive's replay (it keeps the event out of the data lake)");
                if (v.Length > limits.MaxMetadataValueLength) return new($"metadata.{k}", $"is longer than {limits.MaxMetadataValueLength} characters");
            }
        }

        if (!_byType.TryGetValue(e.EventType, out var versions))
        {
            var hint = Suggest(e.EventType);
            return new("event_type", $"unknown event type '{Truncate(e.EventType)}'" + (hint is null ? "" : $" (did you mean '{hint}'?)"));
        }
        if (!versions.TryGetValue(e.Version, out var schema))
            return new("version", $"unknown version '{Truncate(e.Version)}' of '{e.EventType}' (known: {string.Join(", ", versions.Keys.Order(VersionComparer.Instance))})");

        if (e.Payload is null) return new("payload", "is required");

        return ValidatePayload(schema, e.Payload.Utf8);
    }

    /// <summary>Checks a compact payload object against a schema.</summary>
    public static ValidationError? ValidatePayload(EventSchema schema, ReadOnlySpan<byte> payload)
    {
        var reader = new Utf8JsonReader(payload);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return new("payload", "must be a JSON object");
            var seen = 0UL;
            var fields = schema.Fields;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var index = -1;
                for (var i = 0; i < fields.Count; i++)
                {
                    if (reader.ValueTextEquals(fields[i].Utf8Name))
                    {
                        index = i;
                        break;
                    }
                }
                if (index < 0)
                {
                    var unknown = reader.GetString()!;
                    if (!schema.AdditionalProperties)
                        return new($"payload.{Truncate(unknown)}", $"is not a field of {schema.EventType} {schema.Version} (fields: {string.Join(", ", fields.Select(f => f.Name))})");
                    reader.Read();
                    // An undeclared field with an id's name is still read as one downstream (partitioning, the graph).
                    var isId = EntityIds.PayloadFields.Contains(unknown);
                    if (reader.TokenType == JsonTokenType.StartObject)
                        return new($"payload.{Truncate(unknown)}", "nested objects are not allowed; payloads are flat");
                    if (reader.TokenType == JsonTokenType.StartArray)
                    {
                        var item = 0;
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                                return new($"payload.{Truncate(unknown)}", "arrays may hold only strings, numbers, booleans and nulls");
                            if (isId && CheckId(ref reader) is { } badItem) return new($"payload.{Truncate(unknown)}[{item}]", badItem);
                            item++;
                        }
                    }
                    else if (isId && CheckId(ref reader) is { } bad)
                    {
                        return new($"payload.{Truncate(unknown)}", bad);
                    }
                    continue;
                }
                if ((seen & (1UL << index)) != 0)
                    return new($"payload.{fields[index].Name}", "appears more than once");
                seen |= 1UL << index;
                reader.Read();
                var error = ValidateValue(fields[index], ref reader);
                if (error is not null) return error;
            }
            var missing = schema.RequiredMask & ~seen;
            if (missing != 0)
            {
                var first = System.Numerics.BitOperations.TrailingZeroCount(missing);
                return new($"payload.{fields[first].Name}", $"is required by {schema.EventType} {schema.Version}");
            }
            return null;
        }
        catch (JsonException ex)
        {
            return new("payload", $"is not valid JSON: {ex.Message}");
        }
    }

    private static ValidationError? ValidateValue(FieldSchema field, ref Utf8JsonReader reader)
    {
        // The path is only needed for a message: build it on the error path, not for every field of every event.
        var path = new FieldPath(field.Name);
        if (reader.TokenType == JsonTokenType.Null)
            return field.Nullable ? null : new(path, $"must not be null (expected {field.TypeName})");

        switch (field.Type)
        {
            case FieldType.Array:
                if (reader.TokenType != JsonTokenType.StartArray)
                    return new(path, $"expected {field.TypeName}, got {Describe(reader.TokenType)}");
                var count = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    count++;
                    if (field.ItemType is { } itemType)
                    {
                        var error = ValidateScalar(field, itemType, ref reader, path.Item(count - 1));
                        if (error is not null) return error;
                    }
                    else if (reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                    {
                        return new($"{path}[{count - 1}]", "nested arrays and objects are not allowed");
                    }
                }
                if (field.MaxItems is { } max && count > max)
                    return new(path, $"has {count} items; at most {max} are allowed");
                return null;
            default:
                return ValidateScalar(field, field.Type, ref reader, path);
        }
    }

    private static ValidationError? ValidateScalar(FieldSchema field, FieldType type, ref Utf8JsonReader reader, FieldPath path)
    {
        switch (type)
        {
            case FieldType.String:
                if (reader.TokenType != JsonTokenType.String)
                    return new(path, $"expected string, got {Describe(reader.TokenType)}");
                if (field.EntityId && CheckId(ref reader) is { } badId)
                    return new(path, badId);
                if (field.Enum is null && field.MinLength is null && field.MaxLength is null && field.CompiledPattern is null && field.Format is null)
                    return null;
                if (!reader.ValueIsEscaped && field.CompiledPattern is null && field.Format is null && FastStringCheck(field, reader.ValueSpan))
                    return null;
                // The slow path materialises the string to check it exactly and to quote it in the message.
                var s = reader.GetString()!;
                if (field.MinLength is { } minLen && s.Length < minLen)
                    return new(path, minLen == 1 ? "must not be empty" : $"must be at least {minLen} characters long");
                if (field.MaxLength is { } maxLen && s.Length > maxLen)
                    return new(path, $"is {s.Length} characters long; at most {maxLen} are allowed");
                if (field.Enum is { } allowed && !allowed.Contains(s))
                    return new(path, $"'{Truncate(s)}' is not one of {string.Join(", ", allowed)}");
                if (field.CompiledPattern is { } regex && !regex.IsMatch(s))
                    return new(path, $"'{Truncate(s)}' does not match the pattern {field.Pattern}");
                if (field.Format == "uuid" && !Guid.TryParseExact(s, "D", out _))
                    return new(path, $"'{Truncate(s)}' is not a UUID");
                if (field.Format == "date-time" && !EventJson.TryParseTimestamp(s, out _))
                    return new(path, $"'{Truncate(s)}' is not an ISO-8601 date-time with an offset");
                return null;
            case FieldType.Integer:
                if (reader.TokenType != JsonTokenType.Number)
                    return new(path, $"expected integer, got {Describe(reader.TokenType)}");
                if (!reader.TryGetInt64(out var l))
                    return new(path, $"expected integer, got {Encoding.UTF8.GetString(reader.ValueSpan)}");
                return CheckRange(field, path, l);
            case FieldType.Number:
                if (reader.TokenType != JsonTokenType.Number)
                    return new(path, $"expected number, got {Describe(reader.TokenType)}");
                return CheckRange(field, path, reader.GetDouble());
            case FieldType.Boolean:
                return reader.TokenType is JsonTokenType.True or JsonTokenType.False
                    ? null
                    : new(path, $"expected boolean, got {Describe(reader.TokenType)}");
            default:
                return new(path, "nested arrays are not allowed");
        }
    }

    // The entity id rule for a string token; the usual plain ASCII id passes without allocating.
    private static string? CheckId(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String) return null;
        if (!reader.ValueIsEscaped && !reader.HasValueSequence && EntityIds.IsPlainAscii(reader.ValueSpan)) return null;
        try
        {
            return EntityIds.Reason(reader.GetString()!);
        }
        catch (InvalidOperationException)
        {
            // The reader refuses to turn an escaped lone surrogate ("\ud800") into a string.
            return "must not contain a lone surrogate";
        }
    }

    // Allocation-free check of an unescaped string against enum and length constraints: true means it passes.
    private static bool FastStringCheck(FieldSchema field, ReadOnlySpan<byte> utf8)
    {
        if (field.Utf8Enum is { } allowed)
        {
            var found = false;
            foreach (var candidate in allowed)
            {
                if (utf8.SequenceEqual(candidate))
                {
                    found = true;
                    break;
                }
            }
            if (!found) return false;
        }
        if (field.MinLength is null && field.MaxLength is null) return true;
        var length = Encoding.UTF8.GetCharCount(utf8);
        return (field.MinLength is not { } min || length >= min) && (field.MaxLength is not { } max || length <= max);
    }

    private static ValidationError? CheckRange(FieldSchema field, FieldPath path, double value)
    {
        if (field.Minimum is { } min && value < min) return new(path, $"{value} is less than the minimum {min}");
        if (field.Maximum is { } max && value > max) return new(path, $"{value} is greater than the maximum {max}");
        return null;
    }

    /// <summary>"payload.name" or "payload.name[3]", formatted only when a message needs it.</summary>
    private readonly record struct FieldPath(string Name, int Index = -1)
    {
        public FieldPath Item(int index) => this with { Index = index };
        public override string ToString() => Index < 0 ? $"payload.{Name}" : $"payload.{Name}[{Index}]";
        public static implicit operator string(FieldPath p) => p.ToString();
    }

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

    internal static string Truncate(string s) => s.Length <= 64 ? s : s[..61] + "...";

    private string? Suggest(string unknown)
    {
        if (unknown.Length > 128) return null;
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var known in _byType.Keys)
        {
            var d = Levenshtein(unknown, known);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = known;
            }
        }
        return bestDistance <= Math.Max(2, unknown.Length / 5) ? best : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) prev[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}

/// <summary>Orders "major.minor" versions numerically, so 1.10 comes after 1.9.</summary>
public sealed class VersionComparer : IComparer<string>
{
    public static readonly VersionComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        var (xa, xb) = Split(x);
        var (ya, yb) = Split(y);
        var c = xa.CompareTo(ya);
        return c != 0 ? c : xb.CompareTo(yb);
    }

    private static (int, int) Split(string v)
    {
        var dot = v.IndexOf('.');
        if (dot < 0) return (int.TryParse(v, out var only) ? only : 0, 0);
        return (int.TryParse(v.AsSpan(0, dot), out var a) ? a : 0, int.TryParse(v.AsSpan(dot + 1), out var b) ? b : 0);
    }
}
