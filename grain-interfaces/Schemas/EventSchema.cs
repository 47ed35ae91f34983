using System.Text;
using System.Text.RegularExpressions;
using Keystone.Events;

namespace Keystone.Schemas;

public enum FieldType
{
    String,
    Integer,
    Number,
    Boolean,
    Array,
}

/// <summary>One payload field of a schema, compiled from the JSON Schema subset the registry understands.</summary>
public sealed class FieldSchema
{
    public required string Name { get; init; }
    public required FieldType Type { get; init; }
    public bool Required { get; init; }
    public bool Nullable { get; init; }
    public string? Description { get; init; }
    public IReadOnlyList<string>? Enum { get; init; }
    public double? Minimum { get; init; }
    public double? Maximum { get; init; }
    public int? MinLength { get; init; }
    public int? MaxLength { get; init; }
    public string? Pattern { get; init; }
    public string? Format { get; init; }
    public FieldType? ItemType { get; init; }
    public int? MaxItems { get; init; }

    /// <summary>Marked <c>"x-pii": true</c>: masked by the <c>mask-pii-fields</c> transform.</summary>
    public bool Pii { get; init; }

    internal byte[] Utf8Name { get; }
    internal Regex? CompiledPattern { get; }
    internal byte[][]? Utf8Enum { get; }

    /// <summary>Named like an entity id field (<see cref="Keystone.Events.EntityIds.PayloadFields"/>): its strings must pass the id rule.</summary>
    internal bool EntityId { get; }

    public FieldSchema() => Utf8Name = [];

    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    internal FieldSchema(FieldSchema spec)
    {
        Name = spec.Name;
        Type = spec.Type;
        Required = spec.Required;
        Nullable = spec.Nullable;
        Description = spec.Description;
        Enum = spec.Enum;
        Minimum = spec.Minimum;
        Maximum = spec.Maximum;
        MinLength = spec.MinLength;
        MaxLength = spec.MaxLength;
        Pattern = spec.Pattern;
        Format = spec.Format;
        ItemType = spec.ItemType;
        MaxItems = spec.MaxItems;
        Pii = spec.Pii;
        Utf8Name = Encoding.UTF8.GetBytes(spec.Name);
        Utf8Enum = spec.Enum?.Select(Encoding.UTF8.GetBytes).ToArray();
        EntityId = EntityIds.PayloadFields.Contains(spec.Name);
        CompiledPattern = spec.Pattern is null ? null : new Regex(spec.Pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromMilliseconds(50));
    }

    public string TypeName => Type == FieldType.Array ? $"array of {ItemType?.ToString().ToLowerInvariant() ?? "any"}" : Type.ToString().ToLowerInvariant();
}

/// <summary>A registered (event type, version) and the payload fields it allows.</summary>
public sealed class EventSchema
{
    public EventSchema(string eventType, string version, IEnumerable<FieldSchema> fields, bool additionalProperties = false, string? description = null, string? origin = null)
    {
        EventType = eventType;
        Version = version;
        Fields = fields.Select(f => f.Utf8Name.Length == 0 ? new FieldSchema(f) : f).ToArray();
        if (Fields.Count > 64) throw new ArgumentException($"Schema {eventType} {version} has {Fields.Count} fields; at most 64 are supported.");
        AdditionalProperties = additionalProperties;
        Description = description;
        Origin = origin;
        var required = 0UL;
        for (var i = 0; i < Fields.Count; i++)
            if (Fields[i].Required) required |= 1UL << i;
        RequiredMask = required;
    }

    public string EventType { get; }
    public string Version { get; }
    public IReadOnlyList<FieldSchema> Fields { get; }
    public bool AdditionalProperties { get; }
    public string? Description { get; }

    /// <summary>Where the schema was loaded from (a file path or an embedded resource name).</summary>
    public string? Origin { get; }

    internal ulong RequiredMask { get; }

    public FieldSchema? Field(string name) => Fields.FirstOrDefault(f => f.Name == name);

    public IEnumerable<string> PiiFields => Fields.Where(f => f.Pii).Select(f => f.Name);

    public override string ToString() => $"{EventType} {Version}";
}
