using Keystone.Aggregation;
using Keystone.Ads;
using Keystone.Graph;
using Keystone.Routing;
using Keystone.Topics;

namespace Keystone.Client.Querying;

/// <summary>A silo as the membership table knows it: address, name (the pod's name under Kubernetes hosting), status.</summary>
public sealed record ClusterMember(string Address, string Name, string Status, DateTimeOffset StartedAt, DateTimeOffset? LastAlive);

/// <summary>Where one partition's router and operators are active now (silo addresses; null: not active anywhere).</summary>
public sealed record PartitionPlacement(int Partition, string? Router, string? ActivityOperator, string? GraphOperator, string? AdsOperator);

/// <summary>The members of the cluster and where each partition runs.</summary>
public sealed record ClusterView(IReadOnlyList<ClusterMember> Members, IReadOnlyList<PartitionPlacement> Partitions)
{
    /// <summary>Partitions whose router runs on each active silo.</summary>
    public IReadOnlyDictionary<string, int> RoutersPerSilo =>
        Partitions.Where(p => p.Router is not null).GroupBy(p => p.Router!).ToDictionary(g => g.Key, g => g.Count());
}

public static class ClusterQueries
{
    /// <summary>
    /// Reads membership from Orleans' management grain and each partition's grains' locations from the grain
    /// directory (a look-up: it activates nothing).
    /// </summary>
    public static async Task<ClusterView> GetClusterAsync(this IGrainFactory grains, int partitions)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetDetailedHosts(onlyActive: false);
        var members = hosts
            .OrderBy(h => h.StartTime)
            .Select(h => new ClusterMember(h.SiloAddress.ToParsableString(), h.SiloName, h.Status.ToString(),
                new DateTimeOffset(DateTime.SpecifyKind(h.StartTime, DateTimeKind.Utc)),
                h.IAmAliveTime == default ? null : new DateTimeOffset(DateTime.SpecifyKind(h.IAmAliveTime, DateTimeKind.Utc))))
            .ToList();

        async Task<string?> Where(IAddressable grain) => (await management.GetActivationAddress(grain))?.ToParsableString();
        var placements = await Task.WhenAll(Enumerable.Range(0, partitions).Select(async p =>
        {
            var key = StreamNames.PartitionKey(p);
            return new PartitionPlacement(p,
                await Where(grains.GetGrain<IRouterGrain>(key)),
                await Where(grains.GetGrain<IActivityOperatorGrain>(key)),
                await Where(grains.GetGrain<IGraphOperatorGrain>(key)),
                await Where(grains.GetGrain<IAdsOperatorGrain>(key)));
        }));
        return new ClusterView(members, placements);
    }
}
