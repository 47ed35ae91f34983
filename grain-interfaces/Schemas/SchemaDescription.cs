namespace Keystone.Schemas;

/// <summary>A schema as clients see it.</summary>
[GenerateSerializer, Immutable]
public sealed record SchemaDescription(
    [property: Id(0)] string EventType,
    [property: Id(1)] string Version,
    [property: Id(2)] string? Description,
    [property: Id(3)] bool AdditionalFields,
    [property: Id(4)] IReadOnlyList<FieldDescription> Fields)
{
    public static SchemaDescription From(EventSchema s) => new(
        s.EventType, s.Version, s.Description, s.AdditionalProperties,
        s.Fields.Select(f => new FieldDescription(f.Name, f.TypeName, f.Required, f.Nullable, f.Description, f.Enum, f.Minimum, f.Maximum, f.MaxLength, f.Pattern, f.Format, f.Pii)).ToArray());
}

[GenerateSerializer, Immutable]
public sealed record FieldDescription(
    [property: Id(0)] string Name,
    [property: Id(1)] string Type,
    [property: Id(2)] bool Required,
    [property: Id(3)] bool Nullable,
    [property: Id(4)] string? Description,
    [property: Id(5)] IReadOnlyList<string>? Enum,
    [property: Id(6)] double? Minimum,
    [property: Id(7)] double? Maximum,
    [property: Id(8)] int? MaxLength,
    [property: Id(9)] string? Pattern,
    [property: Id(10)] string? Format,
    [property: Id(11)] bool Pii);
