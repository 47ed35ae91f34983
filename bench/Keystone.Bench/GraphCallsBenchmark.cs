using System.Globalization;
using Keystone.Events;
using Keystone.Graph;

namespace Keystone.Bench;

/// <summary>
/// Grain calls the graph makes per event: the operator's own dispatch rounds (<see cref="GraphDispatch"/>) over the
/// saturation run's simulated traffic, cut by partition into deliveries of a given size, with the nodes in memory
/// instead of grains. Each call counted here is one grain call in the silo, whatever it carries; no cluster, no storage.
/// </summary>
/// <remarks>dotnet run -c Release --project bench/Keystone.Bench -- graph-calls [--events 200000] [--delivery 250] [--partitions 4]</remarks>
public static class GraphCallsBenchmark
{
    public static async Task<int> RunAsync(int eventCount, int deliverySize, int partitions)
    {
        var now = DateTimeOffset.UtcNow;
        // The events the graph rule routes are the ones the mapper turns into node updates (or rejects with a reason
        // other than "does not update the graph").
        var graphEvents = PipelineBenchmark.Generate(eventCount, seed: 1)
            .Where(e => GraphEventMapper.Map(e, out _).Count > 0)
            .ToArray();
        var nodes = new Dictionary<(NodeType, string), GraphNode>();
        var options = new GraphOptions();
        var calls = new Dictionary<NodeType, long>();
        long deliveries = 0;
        foreach (var partition in graphEvents.GroupBy(e => Partitioning.PartitionOf(e, partitions)))
        {
            foreach (var delivery in partition.Chunk(deliverySize))
            {
                deliveries++;
                await GraphDispatch.RunAsync(partition.Key, deliveries, delivery, round => Task.FromResult<IReadOnlyList<(NodeType, string, GraphApplyResult)>>(
                    [.. round.Select(n =>
                    {
                        calls[n.Type] = calls.GetValueOrDefault(n.Type) + 1;
                        if (!nodes.TryGetValue((n.Type, n.Id), out var node)) nodes[(n.Type, n.Id)] = node = new GraphNode(n.Type, n.Id, options, new GraphNodeState());
                        var o = node.Apply(n.Batch, now);
                        return (n.Type, n.Id, new GraphApplyResult(Guid.Empty, o.Applied, o.Duplicates, o.Changes, node.Type == NodeType.Video ? node.Genres : [], o.PropertiesChanged, o.EdgeUpdates));
                    })]));
            }
        }
        var total = calls.Values.Sum();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"graph-calls: {graphEvents.Length:N0} graph events of {eventCount:N0}, {deliveries:N0} deliveries of up to {deliverySize:N0} per partition ({partitions} partitions), {nodes.Count:N0} nodes"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"graph-calls: {total:N0} node calls = {total / (double)graphEvents.Length:0.000} per graph event"));
        foreach (var (type, n) in calls.OrderByDescending(kv => kv.Value))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {GraphSchema.Name(type)}: {n:N0} ({n / (double)graphEvents.Length:0.000} per graph event)"));
        return 0;
    }
}
