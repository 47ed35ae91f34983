namespace Keystone.Routing;

/// <summary>One version of the live rule set.</summary>
[GenerateSerializer, Immutable]
public sealed record RulesVersionInfo(
    [property: Id(0)] int Version,
    [property: Id(1)] string Hash,
    [property: Id(2)] int RuleCount,
    [property: Id(3)] DateTimeOffset AppliedAt,
    [property: Id(4)] string Origin);

/// <summary>Why a rule set was refused: the parser's message and where.</summary>
[GenerateSerializer, Immutable]
public sealed record RulesError(
    [property: Id(0)] string Message,
    [property: Id(1)] int Line,
    [property: Id(2)] int Column,
    [property: Id(3)] string? Rule,
    [property: Id(4)] string? Field);

/// <summary>Either the version now in force, or the reason nothing changed.</summary>
[GenerateSerializer, Immutable]
public sealed record RulesUpdate(
    [property: Id(0)] RulesVersionInfo? Applied,
    [property: Id(1)] RulesError? Error);

[GenerateSerializer, Immutable]
public sealed record RulesText(
    [property: Id(0)] RulesVersionInfo Info,
    [property: Id(1)] string Text);

/// <summary>
/// The routing rules in force across the cluster, versioned. Every silo polls it and swaps its routers' rules when
/// the version changes, so an update needs no restart; before the first update the rule file is in force.
/// </summary>
public interface IRoutingRulesGrain : IGrainWithIntegerKey
{
    /// <summary>Validates the whole set; applies it as a new version only if every rule is valid.</summary>
    Task<RulesUpdate> Apply(string text, string origin);

    /// <summary>Makes an earlier version current again (as a new version); null when there is no such version.</summary>
    Task<RulesUpdate?> Rollback(int version);

    /// <summary>The current version and its text; null while the rule file is in force.</summary>
    [Orleans.Concurrency.ReadOnly]
    Task<RulesText?> GetCurrent();

    [Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<RulesVersionInfo>> GetVersions();
}
