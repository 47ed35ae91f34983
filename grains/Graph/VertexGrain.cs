using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Graph;

/// <summary>Device, Series and Genre nodes: small grains that are only their graph side. Key: <c>{type}/{id}</c>.</summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class VertexGrain(
    [PersistentState("graph", StorageNames.State)] IPersistentState<GraphNodeState> graph,
    GraphServices services) : GraphNodeGrainBase, IVertexGrain
{
    private readonly GraphFacet _graph = new(graph, services, Guid.NewGuid());

    private protected override GraphFacet Graph => _graph;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var slash = key.IndexOf('/');
        if (slash <= 0 || !GraphSchema.TryParseType(key[..slash], out var type) || type is NodeType.User or NodeType.Video or NodeType.Profile)
            throw new ArgumentException($"'{key}' is not a device, series or genre node key");
        _graph.Activate(type, key[(slash + 1)..]);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        DeactivationWrite.Leave(reason, _graph.Flush);
}
