namespace Keystone.Routing;

/// <summary>What one router (one fronting partition) has done since it was activated.</summary>
[GenerateSerializer, Immutable]
public sealed record RouterStats(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Batches,
    [property: Id(2)] long Events,
    [property: Id(3)] long Duplicates,
    [property: Id(4)] long Deliveries,
    [property: Id(5)] long Unrouted,
    [property: Id(6)] long Filtered,
    [property: Id(7)] string RulesHash);

/// <summary>
/// Consumes one partition of the fronting topic, applies the routing rules, and appends the results to target
/// topics (one stream message per topic per input batch), keeping the partition. Keyed by the partition number.
/// </summary>
public interface IRouterGrain : IGrainWithStringKey
{
    Task<RouterStats> GetStats();
}
