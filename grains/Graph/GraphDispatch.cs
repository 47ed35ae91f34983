using Keystone.Events;

namespace Keystone.Graph;

/// <summary>What one delivery did to the graph.</summary>
public sealed record GraphDispatchOutcome(
    IReadOnlyList<(NodeType Type, string Id, EdgeChange Change)> EdgeChanges,
    IReadOnlyList<(NodeType Type, string Id)> NodesChanged,
    IReadOnlyList<(KeystoneEvent Event, string Problem)> Invalid,
    long EdgeUpdates,
    long EdgesCreated,
    long Duplicates);

/// <summary>
/// The graph chain for one delivery, as plain logic over a "apply these batches to these nodes" function (grain calls
/// in the operator, in-memory nodes in tests). Four rounds, each node called at most once per delivery:
/// <list type="number">
/// <item>users apply their playback, login and profile events (WATCHES with watch time, USES, HAS);</item>
/// <item>videos apply catalogue events (BELONGS_TO, HAS_GENRE), the reverse WATCHES entries of new viewers and the
/// co-watch counts, and answer with their genres (the enrichment of plays). A title with no input is asked only when
/// its genres are needed: a profile's play of it or a new viewer (a pause or a seek of a known viewer needs neither);</item>
/// <item>profiles (reverse HAS, PREFERS from plays and their genres, played titles), devices and series;</item>
/// <item>genres: reverse HAS_GENRE and PREFERS entries, and a title's new viewers.</item>
/// </list>
/// A reverse entry or derived fact is sent only when the forward edge was created, keyed by the creating event, so a
/// repeat changes nothing on either side; a repeated event re-reports the edges it created, so a crash between the
/// rounds heals on replay.
/// </summary>
public static class GraphDispatch
{
    public delegate Task<IReadOnlyList<(NodeType Type, string Id, GraphApplyResult Result)>> ApplyRound(IReadOnlyList<(NodeType Type, string Id, GraphBatch Batch)> round);

    // Lists made on first use: most nodes of a delivery get only one kind of input (a device only in-edges).
    private sealed class NodeInputs
    {
        private List<KeystoneEvent>? _events;
        private List<NodeUpdate>? _updates;
        private List<InEdgeAdd>? _inEdges;
        private List<DerivedFact>? _facts;

        public List<InEdgeAdd> InEdges => _inEdges ??= [];
        public List<DerivedFact> Facts => _facts ??= [];

        // The event with what the mapping found for this node in it: the node reuses that instead of mapping again.
        public void Add(KeystoneEvent e, NodeUpdate update)
        {
            (_events ??= []).Add(e);
            (_updates ??= []).Add(update);
        }

        public GraphBatch Batch(int partition, long sequence) =>
            new(partition, sequence, (IReadOnlyList<KeystoneEvent>?)_events ?? [], (IReadOnlyList<InEdgeAdd>?)_inEdges ?? [], (IReadOnlyList<DerivedFact>?)_facts ?? [])
            {
                Updates = _updates,
            };
    }

    public static async Task<GraphDispatchOutcome> RunAsync(int partition, long sequence, IReadOnlyList<KeystoneEvent> events, ApplyRound apply)
    {
        var inputs = new Dictionary<(NodeType, string), NodeInputs>();
        NodeInputs For(NodeType type, string id) => inputs.TryGetValue((type, id), out var i) ? i : inputs[(type, id)] = new NodeInputs();
        var invalid = new List<(KeystoneEvent, string)>();
        var plays = new List<(KeystoneEvent Event, string Profile, string Video)>();

        // Parse and validate.
        foreach (var e in events)
        {
            var updates = GraphEventMapper.Map(e, out var problem);
            if (problem is not null) invalid.Add((e, problem));
            for (var i = 0; i < updates.Count; i++) For(updates[i].Type, updates[i].Id).Add(e, updates[i]);
            if (updates.Count > 0 && e.EventType == "video.play.started" && e.Payload.GetString("video_id") is { } video
                && e.Payload.GetString("profile_id") is { } profile && EntityIds.Problem(profile, "profile_id") is null)
                plays.Add((e, profile, video));
        }

        var edgeChanges = new List<(NodeType, string, EdgeChange)>();
        var nodesChanged = new List<(NodeType, string)>();
        var newViewers = new List<(Guid EventId, string Video, DateTimeOffset At)>();
        var genresOf = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        long updatesApplied = 0, created = 0, duplicates = 0;

        async Task Round(Func<NodeType, bool> types)
        {
            var round = new List<(NodeType, string, GraphBatch)>(inputs.Count);
            foreach (var ((type, id), input) in inputs)
                if (types(type)) round.Add((type, id, input.Batch(partition, sequence)));
            foreach (var (type, id, _) in round) inputs.Remove((type, id));
            if (round.Count == 0) return;
            foreach (var (type, id, r) in await apply(round))
            {
                updatesApplied += r.EdgeUpdates;
                duplicates += r.Duplicates;
                if (type == NodeType.Video) genresOf[id] = r.Genres;
                if (r.PropertiesChanged) nodesChanged.Add((type, id));
                foreach (var c in r.Changes)
                {
                    edgeChanges.Add((type, id, c));
                    if (!c.Created) continue;
                    created++;
                    For(GraphSchema.To(c.Label), c.TargetId).InEdges.Add(new InEdgeAdd(c.EventId, c.Label, id, c.FirstSeen));
                    if (c.Label != EdgeLabel.Watches) continue;
                    newViewers.Add((c.EventId, c.TargetId, c.FirstSeen));
                    foreach (var partner in c.CoWatched)
                    {
                        For(NodeType.Video, c.TargetId).Facts.Add(new DerivedFact(c.EventId, FactKind.CoWatch, partner, c.FirstSeen));
                        For(NodeType.Video, partner).Facts.Add(new DerivedFact(c.EventId, FactKind.CoWatch, c.TargetId, c.FirstSeen));
                    }
                }
            }
        }

        await Round(t => t == NodeType.User);

        // A call per title with no input, for its genres: only where a play or a new viewer uses them.
        foreach (var (_, _, video) in plays) For(NodeType.Video, video);
        foreach (var (_, video, _) in newViewers) For(NodeType.Video, video);
        await Round(t => t == NodeType.Video);

        foreach (var (e, profile, video) in plays)
            For(NodeType.Profile, profile).Facts.Add(new DerivedFact(e.EventId, FactKind.Play, video, e.Timestamp, genresOf.GetValueOrDefault(video) ?? []));
        await Round(t => t is NodeType.Profile or NodeType.Device or NodeType.Series);

        foreach (var (eventId, video, at) in newViewers)
            foreach (var genre in genresOf.GetValueOrDefault(video) ?? [])
                For(NodeType.Genre, genre).Facts.Add(new DerivedFact(eventId, FactKind.Viewer, video, at));
        await Round(t => t == NodeType.Genre);

        if (inputs.Count > 0) throw new InvalidOperationException($"graph dispatch left {inputs.Count} node inputs undelivered");
        return new GraphDispatchOutcome(edgeChanges, nodesChanged, invalid, updatesApplied, created, duplicates);
    }
}
