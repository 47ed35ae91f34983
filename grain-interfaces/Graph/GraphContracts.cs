using Keystone.Events;
using Orleans.Concurrency;

namespace Keystone.Graph;

public enum NodeType { User, Video, Profile, Device, Series, Genre }

public enum EdgeLabel { Watches, Has, Uses, BelongsTo, HasGenre, Prefers }

public enum EdgeDirection { Out, In }

/// <summary>
/// The graph's fixed shape (docs/architecture.md, Real-time graph): which node types each label joins, and the names used on the wire.
/// </summary>
public static class GraphSchema
{
    private static readonly (EdgeLabel Label, string Name, NodeType From, NodeType To)[] Edges =
    [
        (EdgeLabel.Watches, "WATCHES", NodeType.User, NodeType.Video),
        (EdgeLabel.Has, "HAS", NodeType.User, NodeType.Profile),
        (EdgeLabel.Uses, "USES", NodeType.User, NodeType.Device),
        (EdgeLabel.BelongsTo, "BELONGS_TO", NodeType.Video, NodeType.Series),
        (EdgeLabel.HasGenre, "HAS_GENRE", NodeType.Video, NodeType.Genre),
        (EdgeLabel.Prefers, "PREFERS", NodeType.Profile, NodeType.Genre),
    ];

    private static readonly (NodeType Type, string Plural, string Singular)[] Types =
    [
        (NodeType.User, "users", "user"), (NodeType.Video, "videos", "video"), (NodeType.Profile, "profiles", "profile"),
        (NodeType.Device, "devices", "device"), (NodeType.Series, "series", "series"), (NodeType.Genre, "genres", "genre"),
    ];

    public static string TypeNames => string.Join(", ", Types.Select(t => t.Plural));
    public static string LabelNames => string.Join(", ", Edges.Select(e => e.Name));

    public static string Name(EdgeLabel label) => Edges[(int)label].Name;
    public static string Name(NodeType type) => Types[(int)type].Singular;
    public static string Plural(NodeType type) => Types[(int)type].Plural;
    public static NodeType From(EdgeLabel label) => Edges[(int)label].From;
    public static NodeType To(EdgeLabel label) => Edges[(int)label].To;

    /// <summary>The type at the other end of <paramref name="label"/> seen from a node on its <paramref name="direction"/> side.</summary>
    public static NodeType Other(EdgeLabel label, EdgeDirection direction) => direction == EdgeDirection.Out ? To(label) : From(label);

    public static bool TryParseType(string? text, out NodeType type)
    {
        foreach (var t in Types)
            if (string.Equals(text, t.Plural, StringComparison.OrdinalIgnoreCase) || string.Equals(text, t.Singular, StringComparison.OrdinalIgnoreCase))
            {
                type = t.Type;
                return true;
            }
        type = default;
        return false;
    }

    public static bool TryParseLabel(string? text, out EdgeLabel label)
    {
        foreach (var e in Edges)
            if (string.Equals(text, e.Name, StringComparison.OrdinalIgnoreCase))
            {
                label = e.Label;
                return true;
            }
        label = default;
        return false;
    }

    /// <summary>The labels a node of <paramref name="type"/> has on its <paramref name="direction"/> side, in a fixed order.</summary>
    public static IReadOnlyList<EdgeLabel> Labels(NodeType type, EdgeDirection direction) =>
        [.. Edges.Where(e => (direction == EdgeDirection.Out ? e.From : e.To) == type).Select(e => e.Label)];

    /// <summary>Why <paramref name="label"/> cannot be asked of a node of <paramref name="type"/> in <paramref name="direction"/>; null when it can.</summary>
    public static string? LabelProblem(NodeType type, EdgeDirection direction, EdgeLabel label)
    {
        var allowed = Labels(type, direction);
        if (allowed.Contains(label)) return null;
        return $"{Plural(type)} have no {(direction == EdgeDirection.Out ? "outgoing" : "incoming")} {Name(label)} edges; "
            + (allowed.Count == 0 ? "they have none in that direction" : $"theirs are {string.Join(", ", allowed.Select(Name))}");
    }

    /// <summary>Grain key of a Device, Series or Genre node (their ids may not contain '/', so the key is unambiguous).</summary>
    public static string VertexKey(NodeType type, string id) => $"{Name(type)}/{id}";

    /// <summary>The start of <see cref="VertexKey"/> for nodes of <paramref name="type"/>: the name and the slash.</summary>
    public static string KeyPrefix(NodeType type) => s_keyPrefixes[(int)type];

    private static readonly string[] s_keyPrefixes = [.. Enum.GetValues<NodeType>().Select(t => Name(t) + "/")];
}

/// <summary>One edge as seen from the node it was asked of. In-edges of a node carry the forward edge's properties.</summary>
/// <param name="Weight">Watch time in ms for WATCHES, the decayed genre affinity for PREFERS; null where a weight means nothing.</param>
[GenerateSerializer, Immutable]
public sealed record GraphEdge(
    [property: Id(0)] string Label,
    [property: Id(1)] string Direction,
    [property: Id(2)] string Type,
    [property: Id(3)] string Id,
    [property: Id(4)] DateTimeOffset FirstSeen,
    [property: Id(5)] DateTimeOffset LastSeen,
    [property: Id(6)] long Count,
    [property: Id(7)] double? Weight);

[GenerateSerializer, Immutable]
public sealed record DegreeView(
    [property: Id(0)] string Label,
    [property: Id(1)] string Direction,
    [property: Id(2)] long Count);

[GenerateSerializer, Immutable]
public sealed record GraphNodeView(
    [property: Id(0)] string Type,
    [property: Id(1)] string Id,
    [property: Id(2)] DateTimeOffset FirstSeen,
    [property: Id(3)] DateTimeOffset LastSeen,
    [property: Id(4)] IReadOnlyDictionary<string, string> Properties,
    [property: Id(5)] IReadOnlyList<DegreeView> Degrees);

/// <param name="NextCursor">Opaque; pass it back as <c>cursor</c> for the next page. Null on the last page.</param>
/// <param name="Total">Edges of the asked labels and direction, all pages together.</param>
[GenerateSerializer, Immutable]
public sealed record EdgePage(
    [property: Id(0)] IReadOnlyList<GraphEdge> Edges,
    [property: Id(1)] string? NextCursor,
    [property: Id(2)] long Total);

/// <param name="Resolve">In-edges: fetch each edge's properties from its source (one call per edge on the page);
/// false lists sources and first-seen times only, for bulk reads of hot nodes.</param>
[GenerateSerializer, Immutable]
public sealed record EdgeQuery(
    [property: Id(0)] EdgeLabel? Label,
    [property: Id(1)] EdgeDirection Direction,
    [property: Id(2)] int Limit,
    [property: Id(3)] string? Cursor,
    [property: Id(4)] bool Resolve = true);

[GenerateSerializer, Immutable]
public sealed record RankedVideo(
    [property: Id(0)] string VideoId,
    [property: Id(1)] double Score,
    [property: Id(2)] int Paths);

/// <summary>A bounded traversal's answer. <paramref name="Cut"/> says whether a bound stopped it short, and which.</summary>
[GenerateSerializer, Immutable]
public sealed record TraversalResult(
    [property: Id(0)] string Start,
    [property: Id(1)] IReadOnlyList<RankedVideo> Videos,
    [property: Id(2)] int Depth,
    [property: Id(3)] int FanOut,
    [property: Id(4)] bool Cut,
    [property: Id(5)] IReadOnlyList<string> CutReasons);

/// <summary>What a node applies from one delivery of the graph operator: events it is the source of, and in-edges
/// and derived facts that other nodes' updates produced.</summary>
[GenerateSerializer, Immutable]
public sealed record GraphBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] IReadOnlyList<KeystoneEvent> Events,
    [property: Id(3)] IReadOnlyList<InEdgeAdd> InEdges,
    [property: Id(4)] IReadOnlyList<DerivedFact> Facts)
{
    /// <summary>
    /// What the operator's mapping found for this node in each of <see cref="Events"/> (same order), so that the
    /// node does not parse the events again. Not serialised: a batch that reaches another silo arrives without it and
    /// the node maps its events itself.
    /// </summary>
    public IReadOnlyList<NodeUpdate>? Updates { get => _updates; init => _updates = value; }

    [NonSerialized] private readonly IReadOnlyList<NodeUpdate>? _updates;
}

/// <summary>What one event says about one node: the forward edges it creates or refreshes there, and properties.</summary>
public sealed record NodeUpdate(NodeType Type, string Id, IReadOnlyList<(EdgeLabel Label, string Target)> Edges, IReadOnlyDictionary<string, string> Properties);

/// <summary>A forward edge was created at <paramref name="SourceId"/>; its target records the reverse entry.</summary>
/// <param name="EventId">The event that created the forward edge: the target's de-duplication key.</param>
[GenerateSerializer, Immutable]
public sealed record InEdgeAdd(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] EdgeLabel Label,
    [property: Id(2)] string SourceId,
    [property: Id(3)] DateTimeOffset At);

public enum FactKind
{
    /// <summary>A user who watched <c>Subject</c> also watched <c>Other</c> (recorded on Subject).</summary>
    CoWatch,
    /// <summary>Title <c>Other</c> of this genre got a new viewer.</summary>
    Viewer,
    /// <summary>This profile played title <c>Other</c>, of genres <c>Genres</c>.</summary>
    Play,
}

[GenerateSerializer, Immutable]
public sealed record DerivedFact(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] FactKind Kind,
    [property: Id(2)] string Other,
    [property: Id(3)] DateTimeOffset At,
    [property: Id(4)] IReadOnlyList<string>? Genres = null);

/// <summary>An edge the node created or changed in a batch (for the graph-changes topic and the reverse side).</summary>
[GenerateSerializer, Immutable]
public sealed record EdgeChange(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] EdgeLabel Label,
    [property: Id(2)] string TargetId,
    [property: Id(3)] bool Created,
    [property: Id(4)] DateTimeOffset FirstSeen,
    [property: Id(5)] DateTimeOffset LastSeen,
    [property: Id(6)] long Count,
    [property: Id(7)] double? Weight,
    [property: Id(8)] IReadOnlyList<string> CoWatched);

/// <param name="Genres">For a video: its genres now (the operator's enrichment of plays).</param>
[GenerateSerializer, Immutable]
public sealed record GraphApplyResult(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] int Applied,
    [property: Id(2)] int Duplicates,
    [property: Id(3)] IReadOnlyList<EdgeChange> Changes,
    [property: Id(4)] IReadOnlyList<string> Genres,
    [property: Id(5)] bool PropertiesChanged,
    [property: Id(6)] int EdgeUpdates);

[GenerateSerializer, Immutable]
public sealed record TopEdges([property: Id(0)] IReadOnlyList<GraphEdge> Edges, [property: Id(1)] int Total);

[GenerateSerializer, Immutable]
public sealed record IdList([property: Id(0)] IReadOnlyList<string> Ids, [property: Id(1)] bool Complete);

[GenerateSerializer, Immutable]
public sealed record RankedId([property: Id(0)] string Id, [property: Id(1)] double Weight);

[GenerateSerializer, Immutable]
public sealed record Ranking([property: Id(0)] IReadOnlyList<RankedId> Items, [property: Id(1)] bool Complete);

[GenerateSerializer, Immutable]
public sealed record TraversalStart([property: Id(0)] TopEdges Top, [property: Id(1)] IdList Out, [property: Id(2)] Ranking Ranked);

/// <summary>How big a node's graph state is: the bound a hot node must respect.</summary>
[GenerateSerializer, Immutable]
public sealed record GraphFootprint(
    [property: Id(0)] long InEdges,
    [property: Id(1)] int InEdgesInState,
    [property: Id(2)] int SealedPages,
    [property: Id(3)] int OutEdges,
    [property: Id(4)] int RememberedIds,
    [property: Id(5)] int StateBytes);

/// <summary>A node's side of the graph. User, Video and Profile grains carry it next to their aggregations (one
/// grain per entity); Device, Series and Genre nodes are small <see cref="IVertexGrain"/>s.</summary>
public interface IGraphNodeGrain : IGrainWithStringKey
{
    ValueTask<GraphApplyResult> ApplyGraph(GraphBatch batch);

    /// <summary>Makes durable what was applied from <paramref name="partition"/> up to log position <paramref name="sequence"/>;
    /// returns the activation that did, so the operator can tell a new activation (which lost what it had applied).</summary>
    [AlwaysInterleave]
    Task<Guid> CheckpointGraph(int partition, long sequence);

    /// <summary>Null when the node has never been seen.</summary>
    [AlwaysInterleave]
    Task<GraphNodeView?> GetNode();

    /// <summary>One hop, paged; null when the node has never been seen.</summary>
    [AlwaysInterleave]
    Task<EdgePage?> GetEdges(EdgeQuery query);

    /// <summary>The forward edges of <paramref name="label"/> to <paramref name="targets"/> that exist (resolves in-edge properties).</summary>
    [AlwaysInterleave]
    Task<IReadOnlyList<GraphEdge>> GetOutEdges(EdgeLabel label, IReadOnlyList<string> targets);

    /// <summary>Derived rankings a traversal reads in one call: co-watched titles (video), titles by viewers (genre),
    /// played titles (profile). <c>Complete</c> is false when the bounded list dropped entries.</summary>
    [AlwaysInterleave]
    Task<Ranking> GetRanking(FactKind kind, int limit);

    /// <summary>Where a traversal starts, in one call: the node's strongest out-edges of <paramref name="label"/>, the ids
    /// of all of them (up to <paramref name="maxIds"/>), and its derived ranking. Null when the node has never been seen.</summary>
    [AlwaysInterleave]
    Task<TraversalStart?> StartTraversal(EdgeLabel label, int fanOut, int maxIds);

    [AlwaysInterleave]
    Task<GraphFootprint> GetFootprint();
}

/// <summary>Device, Series and Genre nodes; key <see cref="GraphSchema.VertexKey"/>.</summary>
public interface IVertexGrain : IGraphNodeGrain;

/// <summary>The graph operator of one partition of the graph topic.</summary>
public interface IGraphOperatorGrain : Keystone.Checkpointing.IEntityOperatorGrain
{
    [AlwaysInterleave]
    Task<GraphOperatorStats> GetStats();

    Task CheckpointNow();

    [AlwaysInterleave]
    Task ResetStats();
}

[GenerateSerializer, Immutable]
public sealed record GraphOperatorStats(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] long CheckpointedSequence,
    [property: Id(3)] long Events,
    [property: Id(4)] long Invalid,
    [property: Id(5)] long EdgeUpdates,
    [property: Id(6)] long EdgesCreated,
    [property: Id(7)] long Duplicates,
    [property: Id(8)] long Checkpoints,
    [property: Id(9)] long Replayed,
    [property: Id(10)] long ChangesEmitted);

/// <summary>Graph queries for REST and the typed client: one implementation, bounded fan-out.</summary>
public interface IGraphQueryGrain : IGrainWithIntegerKey
{
    Task<GraphNodeView?> GetNode(NodeType type, string id);
    Task<EdgePage?> GetEdges(NodeType type, string id, EdgeQuery query);
    Task<TraversalResult?> AlsoWatched(string userId, int limit);
    Task<TraversalResult?> Recommendations(string profileId, int limit);
}

public static class GraphNodes
{
    public static IGraphNodeGrain Get(IGrainFactory grains, NodeType type, string id) => type switch
    {
        NodeType.User => GrainRefs.Get<Aggregation.IUserGrain>(grains, id),
        NodeType.Video => GrainRefs.Get<Aggregation.IVideoGrain>(grains, id),
        NodeType.Profile => GrainRefs.Get<Aggregation.IProfileGrain>(grains, id),
        _ => GrainRefs.Get<IVertexGrain>(grains, GraphSchema.VertexKey(type, id)),
    };
}
