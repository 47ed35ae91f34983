using System.Text;
using Keystone.Aggregation;
using Keystone.Events;
using System.Text.Json.Serialization;
using Keystone.Storage;

namespace Keystone.Graph;

/// <summary>A node's graph state, as checkpointed.</summary>
public sealed class GraphNodeState
{
    public DateTimeOffset? FirstSeen { get; set; }
    public DateTimeOffset? LastSeen { get; set; }
    public Dictionary<string, string> Properties { get; set; } = [];

    /// <summary>Forward edges in creation order (append-only, so a paging cursor is a position).</summary>
    public List<OutEdge> Out { get; set; } = [];

    /// <summary>Reverse entries per label: sealed pages live in their own blobs, only the open page is here.</summary>
    public List<InEdgeList> In { get; set; } = [];

    /// <summary>Playhead per device (users): turns playback into WATCHES watch time.</summary>
    public Dictionary<string, PlaybackCursor> Playback { get; set; } = [];

    /// <summary>A bounded derived ranking: co-watched titles (video), titles by new viewers (genre), played titles (profile).</summary>
    public Dictionary<string, double> Ranking { get; set; } = [];
    public bool RankingTruncated { get; set; }

    /// <summary>The de-duplication memory (<see cref="EventIdHorizon.Pack"/>), present while a checkpoint is written.</summary>
    public byte[]? Dedupe { get; set; }

    /// <summary>The memory as states written before <see cref="Dedupe"/> hold it: read once, never written.</summary>
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenIds { get; set; }
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenAt { get; set; }
}

public sealed class OutEdge
{
    public EdgeLabel Label { get; set; }
    public string Target { get; set; } = "";
    public DateTimeOffset FirstSeen { get; set; }
    public DateTimeOffset LastSeen { get; set; }
    public long Count { get; set; }
    public double Weight { get; set; }

    /// <summary>The event that created the edge: lets a replay re-send the reverse entry it caused.</summary>
    public Guid FirstEventId { get; set; }
}

public sealed class InEdgeList
{
    public EdgeLabel Label { get; set; }
    public long Count { get; set; }
    public int SealedPages { get; set; }
    public List<InEntry> Head { get; set; } = [];
}

public sealed class InEntry
{
    public string Source { get; set; } = "";
    public DateTimeOffset At { get; set; }
}

public sealed record GraphApplyOutcome(int Applied, int Duplicates, int EdgeUpdates, IReadOnlyList<EdgeChange> Changes, bool PropertiesChanged);

/// <summary>
/// One node's adjacency as plain logic: forward edges with their properties, reverse entries in pages, a bounded
/// derived ranking, and an event-id memory that makes every input idempotent. The owning grain wires it to storage.
/// </summary>
public sealed class GraphNode
{
    private const int MaxDevices = 16;

    private readonly Dictionary<(EdgeLabel, string), OutEdge> _out = [];
    private readonly EventIdHorizon _seen;
    private readonly GraphOptions _options;

    public GraphNode(NodeType type, string id, GraphOptions options, GraphNodeState state)
    {
        Type = type;
        Id = id;
        _options = options;
        State = state;
        foreach (var e in state.Out)
        {
            _out[(e.Label, e.Target)] = e;
            if (e.Label == EdgeLabel.HasGenre) _genres = [.. _genres, e.Target];
        }
        _seen = new EventIdHorizon(options.DedupeHorizon, options.DedupeCapacity);
        _seen.Restore(state.Dedupe, state.SeenIds, state.SeenAt);
        (state.SeenIds, state.SeenAt) = (null, null);
        ReleaseCheckpoint();
    }

    public NodeType Type { get; }
    public string Id { get; }

    /// <summary>A title's genres (its HAS_GENRE targets, first added first), which every call to a title returns.</summary>
    /// <remarks>Replaced, never changed, when a genre is added: callers on other partitions may still hold the old
    /// array while this node applies a catalogue update. Kept as it changes since out-edges are never removed.</remarks>
    public IReadOnlyList<string> Genres => _genres;

    private string[] _genres = [];
    public GraphNodeState State { get; }
    public bool Exists => State.FirstSeen is not null;
    public int RememberedIds => _seen.Count;

    public void PrepareCheckpoint() => State.Dedupe = _seen.Pack();

    /// <summary>Drops the copies <see cref="PrepareCheckpoint"/> made once they are written (or read): the horizon has them.</summary>
    public void ReleaseCheckpoint() => State.Dedupe = null;

    public GraphApplyOutcome Apply(GraphBatch batch, DateTimeOffset now)
    {
        _seen.Expire(now);
        int applied = 0, duplicates = 0, updates = 0;
        var propertiesChanged = false;
        var changes = new ChangeSet();

        var events = batch.Events;
        var mapped = batch.Updates is { } u && u.Count == events.Count ? u : null;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var mine = mapped is not null ? mapped[i] : Mine(GraphEventMapper.Map(e, out _));
            if (mine is null) continue;
            if (!_seen.TryAdd(e.EventId, now))
            {
                duplicates++;
                // The edges it created are re-reported: after a crash their reverse entries may never have been written.
                for (var k = 0; k < mine.Edges.Count; k++)
                    if (_out.TryGetValue(mine.Edges[k], out var edge) && edge.FirstEventId == e.EventId)
                        changes.Set(edge, created: true);
                continue;
            }
            applied++;
            Seen(e.Timestamp);
            // Most updates carry no properties: skip the boxed enumerator of an empty dictionary.
            if (mine.Properties.Count > 0)
                foreach (var (name, value) in mine.Properties)
                {
                    if (State.Properties.TryGetValue(name, out var old) && old == value) continue;
                    State.Properties[name] = value;
                    propertiesChanged = true;
                }
            var watch = GraphEventMapper.IsPlayback(e.EventType)
                ? WatchTime.Step(State.Playback, MaxDevices, e.EventType, e.Payload.GetString("device_id") ?? e.Source.DeviceType ?? "unknown",
                    e.Payload.GetString("video_id"), e.Payload.GetInt64("position_ms") ?? 0, e.Payload.GetInt64("from_position_ms"), e.Timestamp)
                : 0;
            for (var k = 0; k < mine.Edges.Count; k++)
            {
                var (label, target) = mine.Edges[k];
                updates++;
                Upsert(label, target, e.EventId, e.Timestamp, label == EdgeLabel.Watches ? watch : 0, changes);
            }
        }

        foreach (var add in batch.InEdges)
        {
            if (!_seen.TryAdd(Derive(add.EventId, "in", GraphSchema.Name(add.Label)), now))
            {
                duplicates++;
                continue;
            }
            applied++;
            updates++;
            Seen(add.At);
            var list = InList(add.Label);
            list.Count++;
            list.Head.Add(new InEntry { Source = add.SourceId, At = add.At });
            // A genre ranks its titles by viewers; a title joins the ranking when it joins the genre.
            if (add.Label == EdgeLabel.HasGenre) Rank(add.SourceId, 0);
        }

        foreach (var fact in batch.Facts)
        {
            var fresh = _seen.TryAdd(Derive(fact.EventId, fact.Kind.ToString(), fact.Other), now);
            if (fact.Kind == FactKind.Play)
            {
                foreach (var genre in fact.Genres ?? [])
                {
                    if (fresh)
                    {
                        updates++;
                        Upsert(EdgeLabel.Prefers, genre, fact.EventId, fact.At, 0, changes);
                    }
                    else if (_out.TryGetValue((EdgeLabel.Prefers, genre), out var edge) && edge.FirstEventId == fact.EventId)
                    {
                        changes.Set(edge, created: true);
                    }
                }
            }
            if (!fresh)
            {
                duplicates++;
                continue;
            }
            applied++;
            Seen(fact.At);
            Rank(fact.Other, 1);
        }

        return new GraphApplyOutcome(applied, duplicates, updates, changes.ToArray(this), propertiesChanged);
    }

    // The update of this node among an event's updates (an event names each node once).
    private NodeUpdate? Mine(IReadOnlyList<NodeUpdate> updates)
    {
        for (var i = 0; i < updates.Count; i++)
            if (updates[i].Type == Type && updates[i].Id == Id) return updates[i];
        return null;
    }

    /// <summary>
    /// The edges one call changed, in the order first changed, each reported once with its values at the end of the
    /// call (an edge changes only in <see cref="Upsert"/>, which records it each time). A node changes a few edges per
    /// delivery, so a list searched from the end costs less than a dictionary per call; a long one gets an index. The
    /// reports are built once, at the end: a user's session updates its WATCHES edge with every event of a delivery,
    /// and building a report per update made half of them garbage at once.
    /// </summary>
    private sealed class ChangeSet
    {
        private const int IndexAbove = 16;
        private List<(OutEdge Edge, bool Created)>? _items;
        private Dictionary<(EdgeLabel, string), int>? _index;

        /// <summary>Records that <paramref name="edge"/> changed; once reported as created, it stays created.</summary>
        public void Set(OutEdge edge, bool created)
        {
            var i = IndexOf(edge.Label, edge.Target);
            if (i >= 0)
            {
                var known = _items![i];
                _items[i] = (edge, known.Created || created);
                return;
            }
            (_items ??= new List<(OutEdge, bool)>(4)).Add((edge, created));
            if (_index is not null) _index[(edge.Label, edge.Target)] = _items.Count - 1;
            else if (_items.Count > IndexAbove)
            {
                _index = new Dictionary<(EdgeLabel, string), int>(_items.Count * 2);
                for (var n = 0; n < _items.Count; n++) _index[(_items[n].Edge.Label, _items[n].Edge.Target)] = n;
            }
        }

        public EdgeChange[] ToArray(GraphNode node)
        {
            if (_items is null) return [];
            var result = new EdgeChange[_items.Count];
            for (var i = 0; i < result.Length; i++) result[i] = node.Change(_items[i].Edge, _items[i].Created);
            return result;
        }

        private int IndexOf(EdgeLabel label, string target)
        {
            if (_items is null) return -1;
            if (_index is not null) return _index.TryGetValue((label, target), out var at) ? at : -1;
            for (var i = _items.Count - 1; i >= 0; i--)
                if (_items[i].Edge.Label == label && string.Equals(_items[i].Edge.Target, target, StringComparison.Ordinal)) return i;
            return -1;
        }
    }

    private void Seen(DateTimeOffset at)
    {
        if (State.FirstSeen is not { } f || at < f) State.FirstSeen = at;
        if (State.LastSeen is not { } l || at > l) State.LastSeen = at;
    }

    private void Upsert(EdgeLabel label, string target, Guid eventId, DateTimeOffset at, double weight, ChangeSet changes)
    {
        var created = false;
        if (!_out.TryGetValue((label, target), out var edge))
        {
            edge = new OutEdge { Label = label, Target = target, FirstSeen = at, LastSeen = at, FirstEventId = eventId };
            State.Out.Add(edge);
            _out[(label, target)] = edge;
            if (label == EdgeLabel.HasGenre) _genres = [.. _genres, target];
            created = true;
        }
        edge.Count++;
        edge.Weight += weight;
        if (at < edge.FirstSeen) edge.FirstSeen = at;
        if (at > edge.LastSeen) edge.LastSeen = at;
        changes.Set(edge, created);
    }

    private EdgeChange Change(OutEdge edge, bool created) => new(
        edge.FirstEventId, edge.Label, edge.Target, created, edge.FirstSeen, edge.LastSeen, edge.Count,
        edge.Label == EdgeLabel.Watches ? edge.Weight : null,
        created && edge.Label == EdgeLabel.Watches ? CoWatchPartners(edge) : []);

    /// <summary>The titles this user started watching most recently before <paramref name="edge"/> (creation order,
    /// so a replay names the same partners).</summary>
    private List<string> CoWatchPartners(OutEdge edge)
    {
        var partners = new List<string>();
        var index = State.Out.LastIndexOf(edge);
        for (var i = index - 1; i >= 0 && partners.Count < _options.CoWatchPartners; i--)
            if (State.Out[i].Label == EdgeLabel.Watches) partners.Add(State.Out[i].Target);
        return partners;
    }

    private InEdgeList InList(EdgeLabel label)
    {
        foreach (var l in State.In)
            if (l.Label == label) return l;
        var list = new InEdgeList { Label = label };
        State.In.Add(list);
        return list;
    }

    private void Rank(string item, double delta)
    {
        State.Ranking[item] = State.Ranking.GetValueOrDefault(item) + delta;
        // Pruned in bulk (not per insert): keeps the strongest, and says the list is no longer complete.
        if (State.Ranking.Count <= _options.RankingCapacity * 5 / 4) return;
        foreach (var weak in State.Ranking.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Skip(_options.RankingCapacity).Select(kv => kv.Key).ToList())
            State.Ranking.Remove(weak);
        State.RankingTruncated = true;
    }

    /// <summary>A de-duplication key for something an event caused here besides the event itself.</summary>
    public static Guid Derive(Guid eventId, string kind, string other)
    {
        Span<byte> bytes = stackalloc byte[16];
        eventId.TryWriteBytes(bytes);
        var h1 = FnvHash.Fnv1a64(kind);
        var h2 = FnvHash.Fnv1a64(other, h1 ^ 0x9E3779B97F4A7C15UL);
        for (var i = 0; i < 8; i++)
        {
            bytes[i] ^= (byte)(h1 >> (i * 8));
            bytes[8 + i] ^= (byte)(h2 >> (i * 8));
        }
        return new Guid(bytes);
    }

    // ---- sealing -------------------------------------------------------------------------------------------------

    /// <summary>The first full open page of some label, to be written to its own blob before <see cref="Sealed"/>.</summary>
    public (EdgeLabel Label, int Page, InEntry[] Entries)? FullPage()
    {
        foreach (var l in State.In)
            if (l.Head.Count >= _options.PageSize)
                return (l.Label, l.SealedPages, [.. l.Head.Take(_options.PageSize)]);
        return null;
    }

    public void Sealed(EdgeLabel label, int page)
    {
        var list = InList(label);
        if (list.SealedPages != page || list.Head.Count < _options.PageSize) return;
        list.Head.RemoveRange(0, _options.PageSize);
        list.SealedPages++;
    }

    // ---- reading -------------------------------------------------------------------------------------------------

    public GraphNodeView View()
    {
        var degrees = new List<DegreeView>();
        foreach (var label in GraphSchema.Labels(Type, EdgeDirection.Out))
            degrees.Add(new DegreeView(GraphSchema.Name(label), "out", State.Out.Count(e => e.Label == label)));
        foreach (var label in GraphSchema.Labels(Type, EdgeDirection.In))
            degrees.Add(new DegreeView(GraphSchema.Name(label), "in", State.In.FirstOrDefault(l => l.Label == label)?.Count ?? 0));
        return new GraphNodeView(GraphSchema.Name(Type), Id, State.FirstSeen ?? default, State.LastSeen ?? default,
            new Dictionary<string, string>(State.Properties, StringComparer.Ordinal), degrees);
    }

    public GraphEdge ToEdge(OutEdge e, Func<OutEdge, double?> weight) =>
        new(GraphSchema.Name(e.Label), "out", GraphSchema.Name(GraphSchema.To(e.Label)), e.Target, e.FirstSeen, e.LastSeen, e.Count, weight(e));

    /// <summary>Out-edges from a cursor position: (edges, next position or null).</summary>
    public (List<GraphEdge> Edges, int? Next) OutPage(IReadOnlySet<EdgeLabel> labels, int from, int limit, Func<OutEdge, double?> weight)
    {
        var edges = new List<GraphEdge>(Math.Min(limit, 64));
        var i = from;
        for (; i < State.Out.Count && edges.Count < limit; i++)
            if (labels.Contains(State.Out[i].Label)) edges.Add(ToEdge(State.Out[i], weight));
        while (i < State.Out.Count && !labels.Contains(State.Out[i].Label)) i++;
        return (edges, i < State.Out.Count ? i : null);
    }

    public long OutCount(IReadOnlySet<EdgeLabel> labels) => State.Out.Count(e => labels.Contains(e.Label));

    public InEdgeList? In(EdgeLabel label) => State.In.FirstOrDefault(l => l.Label == label);

    public IEnumerable<OutEdge> Out(EdgeLabel label) => State.Out.Where(e => e.Label == label);

    public OutEdge? Out(EdgeLabel label, string target) => _out.GetValueOrDefault((label, target));

    public Ranking Ranked(int limit) => new(
        [.. State.Ranking.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(limit).Select(kv => new RankedId(kv.Key, kv.Value))],
        !State.RankingTruncated && State.Ranking.Count <= limit);
}

/// <summary>
/// Paging cursors: the position of the next edge, per direction and label. Out-edges are append-only and in-edge
/// pages are immutable, so a position stays valid while the graph grows.
/// </summary>
public static class EdgeCursor
{
    public static string Encode(EdgeDirection direction, int labelIndex, long position) =>
        Convert.ToBase64String(Encoding.ASCII.GetBytes($"{(direction == EdgeDirection.Out ? 'o' : 'i')}.{labelIndex}.{position}"))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool TryDecode(string? cursor, EdgeDirection direction, out int labelIndex, out long position)
    {
        labelIndex = 0;
        position = 0;
        if (string.IsNullOrEmpty(cursor)) return true;
        if (cursor.Length > 64) return false;
        try
        {
            var b64 = cursor.Replace('-', '+').Replace('_', '/');
            b64 += new string('=', (4 - b64.Length % 4) % 4);
            var parts = Encoding.ASCII.GetString(Convert.FromBase64String(b64)).Split('.');
            return parts.Length == 3
                && parts[0] == (direction == EdgeDirection.Out ? "o" : "i")
                && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out labelIndex)
                && long.TryParse(parts[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out position)
                && labelIndex < 8;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}

/// <summary>The two traversals' ranking, as plain functions over what the nodes return.</summary>
public static class GraphRanking
{
    /// <summary>
    /// Also-watched: for every title the user watched (<paramref name="seeds"/>), the titles its viewers also watched
    /// with their co-watch counts; a candidate's score is the sum over seeds (the number of user-paths of length two
    /// reaching it). Titles the user has seen are excluded. Ties: more seeds reaching it, then id.
    /// </summary>
    public static List<RankedVideo> AlsoWatched(IReadOnlyDictionary<string, Ranking> coWatchedBySeed, IReadOnlySet<string> seen, int limit)
    {
        var scores = new Dictionary<string, (double Score, int Paths)>(StringComparer.Ordinal);
        foreach (var ranking in coWatchedBySeed.Values)
            foreach (var item in ranking.Items)
            {
                if (seen.Contains(item.Id)) continue;
                var (s, p) = scores.GetValueOrDefault(item.Id);
                scores[item.Id] = (s + item.Weight, p + 1);
            }
        return Top(scores, limit);
    }

    /// <summary>
    /// Recommendations: titles of the profile's preferred genres it has not played, scored by Σ over its genres of
    /// (preference × (1 + ln(1 + viewers of the title))): what the profile likes, then what is popular there.
    /// </summary>
    public static List<RankedVideo> Recommendations(IReadOnlyList<(string Genre, double Preference)> genres, IReadOnlyDictionary<string, Ranking> titlesByGenre, IReadOnlySet<string> played, int limit)
    {
        var scores = new Dictionary<string, (double Score, int Paths)>(StringComparer.Ordinal);
        foreach (var (genre, preference) in genres)
        {
            if (!titlesByGenre.TryGetValue(genre, out var titles)) continue;
            foreach (var title in titles.Items)
            {
                if (played.Contains(title.Id)) continue;
                var (s, p) = scores.GetValueOrDefault(title.Id);
                scores[title.Id] = (s + preference * (1 + Math.Log(1 + title.Weight)), p + 1);
            }
        }
        return Top(scores, limit);
    }

    private static List<RankedVideo> Top(Dictionary<string, (double Score, int Paths)> scores, int limit) =>
        [.. scores.OrderByDescending(kv => kv.Value.Score).ThenByDescending(kv => kv.Value.Paths).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(limit).Select(kv => new RankedVideo(kv.Key, Math.Round(kv.Value.Score, 4), kv.Value.Paths))];
}
