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

/// <summary>
/// The graph side of a node grain: applies the graph operator's batches to a <see cref="GraphNode"/>, writes its
/// state at the operator's barriers (sealing full reverse pages first), and answers one-hop reads. User, Video and
/// Profile grains hold one next to their aggregations; <see cref="VertexGrain"/> is only this.
/// </summary>
internal sealed class GraphFacet(IPersistentState<GraphNodeState> storage, GraphServices services, Guid activation, Func<OutEdge, double?>? weight = null)
{
    private const int MaxUnflushedInputs = 5_000;

    private readonly PartitionCoverage _coverage = new();
    private GraphNode _node = null!;
    private StateCheckpointer<GraphNodeState> _checkpointer = null!;

    public void Activate(NodeType type, string id)
    {
        _node = new GraphNode(type, id, services.Options, storage.State);
        _checkpointer = new StateCheckpointer<GraphNodeState>(storage, "graph-" + GraphSchema.Name(type), services.Metrics, services.Logs.CreateLogger<GraphFacet>(), services.PreparedAtSerialization);
    }

    private double? Weight(OutEdge e) => weight?.Invoke(e) ?? (e.Label == EdgeLabel.Watches ? e.Weight : null);

    public async ValueTask<GraphApplyResult> Apply(GraphBatch batch)
    {
        var outcome = _node.Apply(batch, services.Time.GetUtcNow());
        _coverage.Applied(batch.Partition, batch.Sequence);
        if (outcome.Applied > 0) _checkpointer.Record(outcome.Applied);
        if (_checkpointer.PendingEvents >= MaxUnflushedInputs) await _coverage.WriteAsync(Write);
        var genres = _node.Type == NodeType.Video ? _node.Genres : [];
        return new GraphApplyResult(activation, outcome.Applied, outcome.Duplicates, outcome.Changes, genres, outcome.PropertiesChanged, outcome.EdgeUpdates);
    }

    public async Task<Guid> Checkpoint(int partition, long sequence)
    {
        await _coverage.EnsureAsync(partition, sequence, Write);
        return activation;
    }

    public Task Flush() => _coverage.WriteAsync(Write);

    private async Task Write()
    {
        while (_node.FullPage() is { } full)
        {
            await services.Pages.WriteAsync(_node.Type, _node.Id, full.Label, full.Page, full.Entries);
            _node.Sealed(full.Label, full.Page);
        }
        await _checkpointer.WriteAsync(_node.PrepareCheckpoint, _node.ReleaseCheckpoint);
    }

    public GraphNodeView? View() => _node.Exists ? _node.View() : null;

    public async Task<EdgePage?> Edges(EdgeQuery query)
    {
        if (!_node.Exists) return null;
        var all = GraphSchema.Labels(_node.Type, query.Direction);
        if (query.Direction == EdgeDirection.Out)
        {
            var labels = query.Label is { } l ? new HashSet<EdgeLabel> { l } : all.ToHashSet();
            if (!EdgeCursor.TryDecode(query.Cursor, EdgeDirection.Out, out _, out var from) || from > int.MaxValue) throw new ArgumentException("cursor is not one this endpoint returned");
            var (edges, next) = _node.OutPage(labels, (int)from, query.Limit, Weight);
            return new EdgePage(edges, next is { } n ? EdgeCursor.Encode(EdgeDirection.Out, 0, n) : null, _node.OutCount(labels));
        }

        // In-edges: label after label in schema order; within a label, sealed pages first, then the open page.
        if (!EdgeCursor.TryDecode(query.Cursor, EdgeDirection.In, out var labelIndex, out var position) || labelIndex >= Math.Max(1, all.Count))
            throw new ArgumentException("cursor is not one this endpoint returned");
        var wanted = query.Label is { } only ? [only] : all;
        var result = new List<GraphEdge>(Math.Min(query.Limit, 64));
        long total = wanted.Sum(l => _node.In(l)?.Count ?? 0);
        var pageSize = services.Options.PageSize;
        string? cursor = null;
        for (var li = labelIndex; li < all.Count; li++, position = 0)
        {
            var label = all[li];
            if (!wanted.Contains(label) || _node.In(label) is not { } list) continue;
            var sealedCount = (long)list.SealedPages * pageSize;
            while (position < list.Count && result.Count < query.Limit)
            {
                InEntry entry;
                if (position < sealedCount)
                {
                    var page = await services.Pages.ReadAsync(_node.Type, _node.Id, label, (int)(position / pageSize));
                    entry = page[(int)(position % pageSize)];
                }
                else
                {
                    var head = (int)(position - sealedCount);
                    if (head >= list.Head.Count) break;
                    entry = list.Head[head];
                }
                result.Add(new GraphEdge(GraphSchema.Name(label), "in", GraphSchema.Name(GraphSchema.From(label)), entry.Source, entry.At, entry.At, 0, null));
                position++;
            }
            if (result.Count >= query.Limit)
            {
                if (position < list.Count) cursor = EdgeCursor.Encode(EdgeDirection.In, li, position);
                else if (all.Skip(li + 1).Any(l => wanted.Contains(l) && (_node.In(l)?.Count ?? 0) > 0)) cursor = EdgeCursor.Encode(EdgeDirection.In, li + 1, 0);
                break;
            }
        }
        return new EdgePage(result, cursor, total);
    }

    public IReadOnlyList<GraphEdge> OutEdges(EdgeLabel label, IReadOnlyList<string> targets) =>
        [.. targets.Select(t => _node.Out(label, t)).OfType<OutEdge>().Select(e => _node.ToEdge(e, Weight))];

    public TopEdges TopOut(EdgeLabel label, int limit)
    {
        var edges = _node.Out(label).ToList();
        return new TopEdges([.. edges.OrderByDescending(e => Weight(e) ?? 0).ThenByDescending(e => e.Count).ThenBy(e => e.Target, StringComparer.Ordinal)
            .Take(limit).Select(e => _node.ToEdge(e, Weight))], edges.Count);
    }

    public IdList OutIds(EdgeLabel label, int limit)
    {
        var ids = _node.Out(label).Select(e => e.Target).Take(limit + 1).ToList();
        return ids.Count > limit ? new IdList(ids[..limit], false) : new IdList(ids, true);
    }

    /// <summary>The node's derived ranking; each node type keeps one kind (videos co-watch, genres viewers, profiles plays).</summary>
    public Ranking Ranked(FactKind kind, int limit) => (kind, _node.Type) switch
    {
        (FactKind.CoWatch, NodeType.Video) or (FactKind.Viewer, NodeType.Genre) or (FactKind.Play, NodeType.Profile) => _node.Ranked(limit),
        _ => throw new ArgumentException($"{GraphSchema.Plural(_node.Type)} keep no {kind} ranking", nameof(kind)),
    };

    public TraversalStart? Start(EdgeLabel label, int fanOut, int maxIds) =>
        _node.Exists ? new TraversalStart(TopOut(label, fanOut), OutIds(label, maxIds), _node.Ranked(maxIds)) : null;

    public GraphFootprint Footprint()
    {
        _node.PrepareCheckpoint();
        var bytes = JsonSerializer.SerializeToUtf8Bytes(storage.State, KeystoneStateSerializer.Options).Length;
        return new GraphFootprint(
            _node.State.In.Sum(l => l.Count), _node.State.In.Sum(l => l.Head.Count), _node.State.In.Sum(l => l.SealedPages),
            _node.State.Out.Count, _node.RememberedIds, bytes);
    }
}
