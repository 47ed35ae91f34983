using System.Text.Json;
using System.Text.RegularExpressions;

namespace Keystone.Schemas;

/// <summary>A schema file that cannot be used; the message names the file and the offending keyword.</summary>
public sealed class SchemaLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Reads schema files: one JSON Schema document per (event type, version), stored as
/// <c>&lt;event_type&gt;/&lt;version&gt;.json</c>. Only a subset of JSON Schema is understood, and anything outside it is
/// refused at load rather than silently ignored, so a schema never promises a check that is not made.
/// </summary>
public static partial class SchemaLoader
{
    private static readonly HashSet<string> DocumentKeywords = ["$schema", "$id", "$comment", "title", "description", "type", "properties", "required", "additionalProperties", "examples"];
    private static readonly HashSet<string> FieldKeywords = ["type", "description", "$comment", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "items", "maxItems", "x-pii", "examples"];
    private static readonly HashSet<string> Formats = ["uuid", "date-time"];

    [GeneratedRegex(@"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
    public static partial Regex EventTypePattern();

    [GeneratedRegex(@"^[0-9]{1,4}\.[0-9]{1,4}$")]
    public static partial Regex VersionPattern();

    /// <summary>The schemas that ship inside this assembly.</summary>
    public static IReadOnlyList<EventSchema> LoadEmbedded()
    {
        var assembly = typeof(SchemaLoader).Assembly;
        var result = new List<EventSchema>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("keystone-schemas/", StringComparison.Ordinal)).Order())
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            var relative = name["keystone-schemas/".Length..];
            result.Add(Load(relative, reader.ReadToEnd()));
        }
        return result;
    }

    /// <summary>Every <c>*.json</c> below <paramref name="directory"/>, laid out as <c>type/version.json</c>.</summary>
    public static IReadOnlyList<EventSchema> LoadDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new SchemaLoadException($"Schema directory '{directory}' does not exist.");
        var result = new List<EventSchema>();
        foreach (var file in Directory.EnumerateFiles(directory, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(directory, file).Replace('\\', '/');
            result.Add(Load(relative, File.ReadAllText(file)));
        }
        return result;
    }

    /// <summary>Parses one schema document; <paramref name="relativePath"/> must be <c>type/version.json</c>.</summary>
    public static EventSchema Load(string relativePath, string json)
    {
        var parts = relativePath.Split('/');
        if (parts.Length != 2 || !parts[1].EndsWith(".json", StringComparison.Ordinal))
            throw new SchemaLoadException($"{relativePath}: schema files must be laid out as <event_type>/<version>.json.");
        var eventType = parts[0];
        var version = parts[1][..^".json".Length];
        return Parse(eventType, version, json, relativePath);
    }

    public static EventSchema Parse(string eventType, string version, string json, string? origin = null)
    {
        var where = origin ?? $"{eventType}/{version}";
        if (!EventTypePattern().IsMatch(eventType))
            throw new SchemaLoadException($"{where}: '{eventType}' is not a valid event type (lower-case dotted words such as 'video.play.started').");
        if (!VersionPattern().IsMatch(version))
            throw new SchemaLoadException($"{where}: '{version}' is not a valid version (major.minor, such as '1.0').");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SchemaLoadException($"{where}: not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SchemaLoadException($"{where}: a schema must be a JSON object.");
            foreach (var p in root.EnumerateObject())
                if (!DocumentKeywords.Contains(p.Name))
                    throw new SchemaLoadException($"{where}: unsupported keyword '{p.Name}' (supported: {string.Join(", ", DocumentKeywords.Order())}).");
            if (root.TryGetProperty("type", out var t) && (t.ValueKind != JsonValueKind.String || t.GetString() != "object"))
                throw new SchemaLoadException($"{where}: the payload schema's \"type\" must be \"object\".");

            var required = new HashSet<string>(StringComparer.Ordinal);
            if (root.TryGetProperty("required", out var req))
            {
                if (req.ValueKind != JsonValueKind.Array)
                    throw new SchemaLoadException($"{where}: \"required\" must be an array of field names.");
                foreach (var r in req.EnumerateArray())
                {
                    if (r.ValueKind != JsonValueKind.String)
                        throw new SchemaLoadException($"{where}: \"required\" must hold field names (strings).");
                    required.Add(r.GetString()!);
                }
            }

            var fields = new List<FieldSchema>();
            if (root.TryGetProperty("properties", out var props))
            {
                if (props.ValueKind != JsonValueKind.Object)
                    throw new SchemaLoadException($"{where}: \"properties\" must be an object.");
                foreach (var prop in props.EnumerateObject())
                    fields.Add(ParseField(where, prop.Name, prop.Value, required.Contains(prop.Name)));
            }

            foreach (var r in required)
                if (fields.All(f => f.Name != r))
                    throw new SchemaLoadException($"{where}: required field '{r}' is not declared in \"properties\".");

            var additional = false;
            if (root.TryGetProperty("additionalProperties", out var ap))
            {
                if (ap.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new SchemaLoadException($"{where}: \"additionalProperties\" must be true or false.");
                additional = ap.GetBoolean();
            }

            var description = root.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            try
            {
                return new EventSchema(eventType, version, fields, additional, description, origin);
            }
            catch (ArgumentException e)
            {
                throw new SchemaLoadException($"{where}: {e.Message}", e);
            }
        }
    }

    private static FieldSchema ParseField(string where, string name, JsonElement spec, bool required)
    {
        var at = $"{where}: field '{name}'";
        if (spec.ValueKind != JsonValueKind.Object)
            throw new SchemaLoadException($"{at}: a field schema must be an object.");
        foreach (var p in spec.EnumerateObject())
            if (!FieldKeywords.Contains(p.Name))
                throw new SchemaLoadException($"{at}: unsupported keyword '{p.Name}' (supported: {string.Join(", ", FieldKeywords.Order())}).");

        if (!spec.TryGetProperty("type", out var typeEl))
            throw new SchemaLoadException($"{at}: \"type\" is required.");
        var (type, nullable) = ParseType(at, typeEl);

        FieldType? itemType = null;
        if (spec.TryGetProperty("items", out var items))
        {
            if (type != FieldType.Array)
                throw new SchemaLoadException($"{at}: \"items\" is only allowed on arrays.");
            if (items.ValueKind != JsonValueKind.Object || !items.TryGetProperty("type", out var it))
                throw new SchemaLoadException($"{at}: \"items\" must be an object with a \"type\".");
            var (parsed, _) = ParseType(at + " items", it);
            if (parsed == FieldType.Array)
                throw new SchemaLoadException($"{at}: nested arrays are not supported.");
            itemType = parsed;
        }

        IReadOnlyList<string>? enumValues = null;
        if (spec.TryGetProperty("enum", out var en))
        {
            if (en.ValueKind != JsonValueKind.Array || en.GetArrayLength() == 0 || en.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new SchemaLoadException($"{at}: \"enum\" must be a non-empty array of strings.");
            if (type != FieldType.String && itemType != FieldType.String)
                throw new SchemaLoadException($"{at}: \"enum\" is only supported on strings.");
            enumValues = en.EnumerateArray().Select(e => e.GetString()!).ToArray();
        }

        string? pattern = null;
        if (spec.TryGetProperty("pattern", out var pat))
        {
            pattern = pat.ValueKind == JsonValueKind.String ? pat.GetString() : throw new SchemaLoadException($"{at}: \"pattern\" must be a string.");
            try
            {
                _ = new Regex(pattern!, RegexOptions.None, TimeSpan.FromMilliseconds(50));
            }
            catch (ArgumentException e)
            {
                throw new SchemaLoadException($"{at}: \"pattern\" is not a valid regular expression: {e.Message}");
            }
        }

        string? format = null;
        if (spec.TryGetProperty("format", out var fmt))
        {
            format = fmt.ValueKind == JsonValueKind.String ? fmt.GetString() : null;
            if (format is null || !Formats.Contains(format))
                throw new SchemaLoadException($"{at}: unsupported \"format\" (supported: {string.Join(", ", Formats)}).");
        }

        var pii = false;
        if (spec.TryGetProperty("x-pii", out var piiEl))
        {
            if (piiEl.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                throw new SchemaLoadException($"{at}: \"x-pii\" must be true or false.");
            pii = piiEl.GetBoolean();
        }

        return new FieldSchema
        {
            Name = name,
            Type = type,
            Required = required,
            Nullable = nullable,
            Description = spec.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null,
            Enum = enumValues,
            Minimum = Number(at, spec, "minimum"),
            Maximum = Number(at, spec, "maximum"),
            MinLength = (int?)Number(at, spec, "minLength"),
            MaxLength = (int?)Number(at, spec, "maxLength"),
            MaxItems = (int?)Number(at, spec, "maxItems"),
            Pattern = pattern,
            Format = format,
            ItemType = itemType,
            Pii = pii,
        };
    }

    private static (FieldType Type, bool Nullable) ParseType(string at, JsonElement typeEl)
    {
        var names = typeEl.ValueKind switch
        {
            JsonValueKind.String => [typeEl.GetString()!],
            JsonValueKind.Array when typeEl.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => typeEl.EnumerateArray().Select(e => e.GetString()!).ToArray(),
            _ => throw new SchemaLoadException($"{at}: \"type\" must be a string or an array of strings."),
        };
        var nullable = names.Contains("null");
        var rest = names.Where(n => n != "null").ToArray();
        if (rest.Length != 1)
            throw new SchemaLoadException($"{at}: \"type\" must name exactly one of string, integer, number, boolean, array (optionally with \"null\").");
        FieldType type = rest[0] switch
        {
            "string" => FieldType.String,
            "integer" => FieldType.Integer,
            "number" => FieldType.Number,
            "boolean" => FieldType.Boolean,
            "array" => FieldType.Array,
            "object" => throw new SchemaLoadException($"{at}: nested objects are not supported; payloads are flat."),
            var other => throw new SchemaLoadException($"{at}: unknown type '{other}'."),
        };
        return (type, nullable);
    }

    private static double? Number(string at, JsonElement spec, string keyword)
    {
        if (!spec.TryGetProperty(keyword, out var el)) return null;
        if (el.ValueKind != JsonValueKind.Number)
            throw new SchemaLoadException($"{at}: \"{keyword}\" must be a number.");
        return el.GetDouble();
    }
}
