using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Keystone.Graph;

/// <summary>The graph methods of a node grain, answered by its <see cref="GraphFacet"/>.</summary>
public abstract class GraphNodeGrainBase : Grain, IGraphNodeGrain
{
    private protected abstract GraphFacet Graph { get; }

    public ValueTask<GraphApplyResult> ApplyGraph(GraphBatch batch) => Graph.Apply(batch);
    public Task<Guid> CheckpointGraph(int partition, long sequence) => Graph.Checkpoint(partition, sequence);
    public Task<GraphNodeView?> GetNode() => Task.FromResult(Graph.View());
    public Task<EdgePage?> GetEdges(EdgeQuery query) => Graph.Edges(query);
    public Task<IReadOnlyList<GraphEdge>> GetOutEdges(EdgeLabel label, IReadOnlyList<string> targets) => Task.FromResult(Graph.OutEdges(label, targets));
    public Task<Ranking> GetRanking(FactKind kind, int limit) => Task.FromResult(Graph.Ranked(kind, limit));
    public Task<TraversalStart?> StartTraversal(EdgeLabel label, int fanOut, int maxIds) => Task.FromResult(Graph.Start(label, fanOut, maxIds));
    public Task<GraphFootprint> GetFootprint() => Task.FromResult(Graph.Footprint());
}
