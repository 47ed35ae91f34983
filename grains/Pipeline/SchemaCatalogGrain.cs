using Keystone.Schemas;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Pipeline;

public sealed class SchemaCatalogState
{
    public List<AddedSchema> Added { get; set; } = [];
}

/// <summary>
/// Schema evolution without a restart: a new version is checked (a valid schema in the supported subset, a new
/// version number, backward compatible with the latest version of its type) and stored; silos pick it up.
/// </summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class SchemaCatalogGrain(
    [PersistentState("schema-catalog", StorageNames.State)] IPersistentState<SchemaCatalogState> state,
    SchemaRegistryProvider schemas,
    TimeProvider time,
    ILogger<SchemaCatalogGrain> logger) : Grain, ISchemaCatalogGrain
{
    public async Task<SchemaAddResult> Add(string eventType, string version, string json)
    {
        EventSchema next;
        try
        {
            next = SchemaLoader.Parse(eventType, version, json, $"{eventType}/{version}");
        }
        catch (SchemaLoadException e)
        {
            return new SchemaAddResult(null, [e.Message], false);
        }
        // This silo's registry may not have caught up with versions added moments ago; this grain's list has.
        var registry = state.State.Added.Aggregate(schemas.Current, (r, a) => r.TryGet(a.EventType, a.Version, out _) ? r : r.With(SchemaLoader.Parse(a.EventType, a.Version, a.Json)));
        if (registry.TryGet(eventType, version, out _))
            return new SchemaAddResult(null, [$"{eventType} version {version} already exists; versions are immutable"], true);
        var latest = registry.Versions(eventType).OrderBy(s => s.Version, VersionComparer.Instance).LastOrDefault();
        if (latest is not null && SchemaCompatibility.Problems(latest, next) is { Count: > 0 } problems)
            return new SchemaAddResult(null, problems, false);

        state.State.Added.Add(new AddedSchema(eventType, version, json, time.GetUtcNow()));
        await state.WriteStateAsync();
        logger.LogInformation("Schema {Type} {Version} added", eventType, version);
        return new SchemaAddResult(SchemaDescription.From(next), [], false);
    }

    public Task<IReadOnlyList<AddedSchema>> GetAdded() => Task.FromResult<IReadOnlyList<AddedSchema>>([.. state.State.Added]);
}
