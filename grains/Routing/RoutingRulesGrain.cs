using Keystone.Pipeline;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Routing;

public sealed class StoredRules
{
    public int Version { get; set; }
    public string Text { get; set; } = "";
    public string Hash { get; set; } = "";
    public int RuleCount { get; set; }
    public DateTimeOffset AppliedAt { get; set; }
    public string Origin { get; set; } = "";

    public RulesVersionInfo Info => new(Version, Hash, RuleCount, AppliedAt, Origin);
}

/// <summary>The versions of the live rule set, newest last; the last one is in force. Old versions are dropped beyond a bound.</summary>
public sealed class RulesHistory
{
    public const int Kept = 50;

    public List<StoredRules> Versions { get; set; } = [];

    public StoredRules? Current => Versions.Count == 0 ? null : Versions[^1];

    public StoredRules? Find(int version) => Versions.FirstOrDefault(v => v.Version == version);

    public StoredRules Add(string text, RuleSet parsed, DateTimeOffset at, string origin)
    {
        var stored = new StoredRules
        {
            Version = (Current?.Version ?? 0) + 1,
            Text = text,
            Hash = parsed.Hash,
            RuleCount = parsed.Rules.Count,
            AppliedAt = at,
            Origin = origin,
        };
        Versions.Add(stored);
        if (Versions.Count > Kept) Versions.RemoveRange(0, Versions.Count - Kept);
        return stored;
    }
}

// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class RoutingRulesGrain(
    [PersistentState("routing-rules", StorageNames.State)] IPersistentState<RulesHistory> state,
    SchemaRegistryProvider schemas,
    IOptions<RoutingOptions> options,
    TimeProvider time,
    ILogger<RoutingRulesGrain> logger) : Grain, IRoutingRulesGrain
{
    public async Task<RulesUpdate> Apply(string text, string origin)
    {
        RuleSet parsed;
        try
        {
            parsed = RuleSetParser.Parse(text, origin, Settings(options.Value, schemas));
        }
        catch (RoutingRulesException e)
        {
            return new RulesUpdate(null, new RulesError(e.Message, e.Line, e.Column, e.Rule, e.Field));
        }
        var stored = state.State.Add(text, parsed, time.GetUtcNow(), origin);
        await state.WriteStateAsync();
        logger.LogInformation("Routing rules version {Version} ({Hash}, {Count} rules) applied from {Origin}", stored.Version, stored.Hash, stored.RuleCount, origin);
        return new RulesUpdate(stored.Info, null);
    }

    public async Task<RulesUpdate?> Rollback(int version) =>
        state.State.Find(version) is { } old ? await Apply(old.Text, $"rollback to version {version}") : null;

    public Task<RulesText?> GetCurrent() =>
        Task.FromResult(state.State.Current is { } c ? new RulesText(c.Info, c.Text) : null);

    public Task<IReadOnlyList<RulesVersionInfo>> GetVersions() =>
        Task.FromResult<IReadOnlyList<RulesVersionInfo>>([.. state.State.Versions.Select(v => v.Info)]);

    public static TransformSettings Settings(RoutingOptions routing, SchemaRegistryProvider schemas) =>
        new(routing.Pii.Fields, routing.Pii.Mode, routing.Pii.Salt, schemas.Current);
}
