namespace Keystone.Schemas;

/// <summary>A schema version added at run time (<c>POST /v1/schemas/{type}/versions</c>).</summary>
[GenerateSerializer, Immutable]
public sealed record AddedSchema(
    [property: Id(0)] string EventType,
    [property: Id(1)] string Version,
    [property: Id(2)] string Json,
    [property: Id(3)] DateTimeOffset AddedAt);

/// <summary>The outcome of adding a version: the schema, or the reasons it was refused (Conflict: the version exists).</summary>
[GenerateSerializer, Immutable]
public sealed record SchemaAddResult(
    [property: Id(0)] SchemaDescription? Added,
    [property: Id(1)] IReadOnlyList<string> Problems,
    [property: Id(2)] bool Conflict);

/// <summary>Schema versions added at run time, in order; every silo polls it and adds them to its registry.</summary>
public interface ISchemaCatalogGrain : IGrainWithIntegerKey
{
    Task<SchemaAddResult> Add(string eventType, string version, string json);

    [Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<AddedSchema>> GetAdded();
}
