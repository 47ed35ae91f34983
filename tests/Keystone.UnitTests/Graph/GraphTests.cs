using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Keystone.Events;
using Keystone.Graph;
using Keystone.Operations;

namespace Keystone.UnitTests.Graph;

/// <summary>The graph's plain logic driven in memory: the same dispatch rounds the operator runs, with
/// <see cref="GraphNode"/>s in a dictionary instead of grains.</summary>
internal sealed class MemoryGraph(GraphOptions? options = null, bool remote = false)
{
    /// <summary>Batches handed to nodes, as they were given (with the operator's mapped updates).</summary>
    public List<GraphBatch> Batches { get; } = [];

    /// <summary>The nodes called, in order: one grain call each in the operator.</summary>
    public List<(NodeType Type, string Id)> Called { get; } = [];

    public GraphOptions Options { get; } = options ?? new GraphOptions();
    public Dictionary<(NodeType, string), GraphNode> Nodes { get; } = [];
    public DateTimeOffset Now { get; set; } = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private long _sequence;

    public GraphNode Node(NodeType type, string id) =>
        Nodes.TryGetValue((type, id), out var n) ? n : Nodes[(type, id)] = new GraphNode(type, id, Options, new GraphNodeState());

    public Task<GraphDispatchOutcome> Deliver(params KeystoneEvent[] events) =>
        GraphDispatch.RunAsync(0, ++_sequence, events, round =>
            Task.FromResult<IReadOnlyList<(NodeType, string, GraphApplyResult)>>([.. round.Select(n =>
            {
                var node = Node(n.Type, n.Id);
                Batches.Add(n.Batch);
                Called.Add((n.Type, n.Id));
                // A node on another silo gets the batch without the operator's mapping and maps the events itself.
                var o = node.Apply(remote ? n.Batch with { Updates = null } : n.Batch, Now);
                var genres = n.Type == NodeType.Video ? node.Out(EdgeLabel.HasGenre).Select(e => e.Target).ToList() : [];
                return (n.Type, n.Id, new GraphApplyResult(Guid.Empty, o.Applied, o.Duplicates, o.Changes, genres, o.PropertiesChanged, o.EdgeUpdates));
            })]));

    public string[] Out(NodeType type, string id, EdgeLabel label) =>
        Nodes.TryGetValue((type, id), out var n) ? [.. n.Out(label).Select(e => e.Target).Order(StringComparer.Ordinal)] : [];

    public string[] In(NodeType type, string id, EdgeLabel label) =>
        Nodes.TryGetValue((type, id), out var n) && n.In(label) is { } l ? [.. l.Head.Select(e => e.Source).Order(StringComparer.Ordinal)] : [];

    /// <summary>Every node's state as JSON: equal strings mean nothing changed.</summary>
    public string Dump() => string.Join("\n", Nodes.OrderBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal).Select(kv =>
    {
        var state = kv.Value.State;
        return $"{kv.Key}: " + System.Text.Json.JsonSerializer.Serialize(new { state.FirstSeen, state.LastSeen, state.Properties, state.Out, state.In, state.Ranking, state.RankingTruncated });
    }));
}

internal static class G
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public static KeystoneEvent Event(string type, DateTimeOffset at, params (string, object?)[] payload) =>
        new(Guid.NewGuid(), type, at, "1.0", new EventSource("test", "tv", "us-east-1"), Payload.Create(payload), EventMetadata.Empty);

    public static KeystoneEvent Play(string user, string video, string type = "video.play.started", long position = 0, DateTimeOffset? at = null, string profile = "p", string? device = "d") =>
        Event(type, at ?? T0, [("user_id", user), ("profile_id", profile), ("video_id", video), ("position_ms", position), .. device is null ? Array.Empty<(string, object?)>() : [("device_id", device)]]);

    public static KeystoneEvent Content(string video, string? series, params string[] genres) =>
        Event("content.added", T0, [("video_id", video), ("title", "T-" + video), ("genres", genres), .. series is null ? Array.Empty<(string, object?)>() : [("series_id", series)]]);
}

public class GraphEventMapperTests
{
    private static (NodeType, string, string[])[] Map(KeystoneEvent e, out string? problem) =>
        [.. GraphEventMapper.Map(e, out problem).Select(u => (u.Type, u.Id, u.Edges.Select(x => $"{GraphSchema.Name(x.Label)}>{x.Target}").ToArray()))];

    [Theory]
    [InlineData("video.play.started")]
    [InlineData("video.play.paused")]
    [InlineData("video.play.resumed")]
    [InlineData("video.play.seeked")]
    [InlineData("video.play.stopped")]
    public void Playback_creates_WATCHES_and_USES_at_the_user(string type)
    {
        var mapped = Map(G.Play("u1", "v1", type), out var problem);
        Assert.Null(problem);
        Assert.Equal([(NodeType.User, "u1", ["WATCHES>v1", "USES>d"])], mapped);
        // Without a device only WATCHES.
        Assert.Equal([(NodeType.User, "u1", ["WATCHES>v1"])], Map(G.Play("u1", "v1", type, device: null), out _));
    }

    [Fact]
    public void Sign_in_profile_switch_and_profile_creation_create_HAS()
    {
        Assert.Equal([(NodeType.User, "u1", ["USES>d1", "HAS>p1"])],
            Map(G.Event("user.login", G.T0, ("user_id", "u1"), ("device_id", "d1"), ("profile_id", "p1")), out _));
        Assert.Equal([(NodeType.User, "u1", ["USES>d1"])], Map(G.Event("user.login", G.T0, ("user_id", "u1"), ("device_id", "d1")), out _));
        Assert.Equal([(NodeType.User, "u1", ["HAS>p2", "HAS>p1", "USES>d1"])],
            Map(G.Event("user.profile_switch", G.T0, ("user_id", "u1"), ("from_profile_id", "p1"), ("profile_id", "p2"), ("device_id", "d1")), out _));

        var created = GraphEventMapper.Map(G.Event("profile.created", G.T0, ("user_id", "u1"), ("profile_id", "p1"), ("profile_name", "Kids"), ("language", "vi")), out _);
        Assert.Equal(2, created.Count);
        Assert.Equal((NodeType.User, "u1", "HAS>p1"), (created[0].Type, created[0].Id, $"{GraphSchema.Name(created[0].Edges[0].Label)}>{created[0].Edges[0].Target}"));
        Assert.Equal((NodeType.Profile, "p1"), (created[1].Type, created[1].Id));
        Assert.Empty(created[1].Edges);
        Assert.Equal(new Dictionary<string, string> { ["user_id"] = "u1", ["profile_name"] = "Kids", ["language"] = "vi" }, created[1].Properties);
    }

    [Theory]
    [InlineData("content.added")]
    [InlineData("content.metadata_updated")]
    public void Catalogue_events_create_BELONGS_TO_and_HAS_GENRE_with_properties(string type)
    {
        var e = G.Event(type, G.T0, ("video_id", "v1"), ("title", "Dark"), ("series_id", "s1"), ("genres", new[] { "drama", "thriller", "drama" }), ("season", 2L));
        var updates = GraphEventMapper.Map(e, out var problem);
        Assert.Null(problem);
        var u = Assert.Single(updates);
        Assert.Equal((NodeType.Video, "v1"), (u.Type, u.Id));
        Assert.Equal(["BELONGS_TO>s1", "HAS_GENRE>drama", "HAS_GENRE>thriller"], u.Edges.Select(x => $"{GraphSchema.Name(x.Label)}>{x.Target}"));
        Assert.Equal(new Dictionary<string, string> { ["title"] = "Dark", ["series_id"] = "s1", ["season"] = "2" }, u.Properties);
    }

    [Fact]
    public void Unusable_ids_are_reported_and_other_types_do_not_touch_the_graph()
    {
        Assert.Empty(Map(G.Event("video.play.started", G.T0, ("video_id", "v1")), out var problem));
        Assert.Equal("'user_id' is missing", problem);
        Assert.Empty(Map(G.Event("video.play.started", G.T0, ("user_id", "../etc"), ("video_id", "v1")), out problem));
        Assert.Contains("must not contain '/'", problem);
        // A bad optional id drops that edge only.
        Assert.Equal([(NodeType.User, "u1", ["WATCHES>v1"])], Map(G.Event("video.play.started", G.T0, ("user_id", "u1"), ("video_id", "v1"), ("device_id", "a b")), out problem));
        Assert.Contains("whitespace", problem);
        Assert.Empty(Map(G.Event("billing.payment_processed", G.T0, ("user_id", "u1")), out problem));
        Assert.Contains("does not update the graph", problem);
    }
}

public class GraphNodeTests
{
    [Fact]
    public async Task Every_forward_edge_has_exactly_one_reverse_entry_and_the_reverse_side_matches()
    {
        var graph = new MemoryGraph();
        await graph.Deliver(G.Content("v1", "s1", "drama"), G.Content("v2", null, "drama", "comedy"));
        await graph.Deliver(
            G.Event("profile.created", G.T0, ("user_id", "u1"), ("profile_id", "p1")),
            G.Event("user.login", G.T0, ("user_id", "u1"), ("device_id", "d1"), ("profile_id", "p1")),
            G.Play("u1", "v1", profile: "p1", device: "d1"), G.Play("u1", "v1", "video.play.stopped", 5_000, G.T0.AddSeconds(5), "p1", "d1"),
            G.Play("u2", "v1", profile: "p2", device: "d2"), G.Play("u2", "v2", profile: "p2", device: "d2"));

        // Forward edges, derived from the reverse entries of every node, equal the forward edges themselves.
        var forward = graph.Nodes.Values.SelectMany(n => n.State.Out.Select(e => $"{GraphSchema.Name(n.Type)}:{n.Id} {GraphSchema.Name(e.Label)} {e.Target}")).Order().ToList();
        var reverse = graph.Nodes.Values.SelectMany(n => n.State.In.SelectMany(l => l.Head.Select(x =>
            $"{GraphSchema.Name(GraphSchema.From(l.Label))}:{x.Source} {GraphSchema.Name(l.Label)} {n.Id}"))).Order().ToList();
        Assert.Equal(forward, reverse);
        Assert.Equal(
            ["profile:p1 PREFERS drama", "profile:p2 PREFERS comedy", "profile:p2 PREFERS drama", "user:u1 HAS p1", "user:u1 USES d1", "user:u1 WATCHES v1",
             "user:u2 USES d2", "user:u2 WATCHES v1", "user:u2 WATCHES v2", "video:v1 BELONGS_TO s1", "video:v1 HAS_GENRE drama", "video:v2 HAS_GENRE comedy", "video:v2 HAS_GENRE drama"],
            forward);
        Assert.All(graph.Nodes.Values.SelectMany(n => n.State.In), l => Assert.Equal(l.Count, l.Head.Count));

        // Edge properties: two events, 5 s watched.
        var watches = graph.Node(NodeType.User, "u1").Out(EdgeLabel.Watches, "v1")!;
        Assert.Equal((2L, 5_000.0, G.T0, G.T0.AddSeconds(5)), (watches.Count, watches.Weight, watches.FirstSeen, watches.LastSeen));
    }

    [Fact]
    public async Task A_title_is_called_only_when_it_has_input_or_its_genres_are_needed()
    {
        var graph = new MemoryGraph();
        await graph.Deliver(G.Content("v1", "s1", "drama"), G.Play("u1", "v1"));

        // A known viewer pausing and resuming changes only the user's WATCHES edge: the title is not asked.
        graph.Called.Clear();
        await graph.Deliver(G.Play("u1", "v1", "video.play.paused", 5_000, G.T0.AddSeconds(5)), G.Play("u1", "v1", "video.play.resumed", 5_000, G.T0.AddSeconds(9)));
        Assert.Equal([(NodeType.User, "u1")], graph.Called);

        // A new viewer (even from a pause) gives the title its reverse entry and the genre a new viewer.
        graph.Called.Clear();
        await graph.Deliver(G.Play("u2", "v1", "video.play.paused", 1_000, G.T0.AddSeconds(10), profile: "p2", device: "d2"));
        Assert.Contains((NodeType.Video, "v1"), graph.Called);
        Assert.Equal(["u1", "u2"], graph.In(NodeType.Video, "v1", EdgeLabel.Watches));
        Assert.Contains((NodeType.Genre, "drama"), graph.Called);

        // A known viewer's new play asks the title for its genres: the profile's PREFERS follows from them (and the
        // genre gets its reverse entry).
        graph.Called.Clear();
        await graph.Deliver(G.Play("u2", "v1", "video.play.started", 0, G.T0.AddSeconds(20), profile: "p2", device: "d2"));
        Assert.Equal([(NodeType.User, "u2"), (NodeType.Video, "v1"), (NodeType.Profile, "p2"), (NodeType.Genre, "drama")], graph.Called);
        Assert.Equal(["drama"], graph.Out(NodeType.Profile, "p2", EdgeLabel.Prefers));
    }

    [Fact]
    public async Task A_titles_genres_follow_its_catalogue_updates_and_a_list_handed_out_never_changes()
    {
        var graph = new MemoryGraph();
        await graph.Deliver(G.Content("v1", null, "drama", "comedy"));
        var node = graph.Node(NodeType.Video, "v1");
        var before = node.Genres;
        Assert.Equal(["drama", "comedy"], before);

        await graph.Deliver(G.Event("content.metadata_updated", G.T0, ("video_id", "v1"), ("genres", new[] { "comedy", "thriller" })));
        Assert.Equal(["drama", "comedy", "thriller"], node.Genres);
        Assert.Equal(["drama", "comedy"], before);
        Assert.Equal(node.Out(EdgeLabel.HasGenre).Select(e => e.Target), node.Genres);

        // A node restored from its state knows them too.
        var restored = new GraphNode(NodeType.Video, "v1", graph.Options, node.State);
        Assert.Equal(["drama", "comedy", "thriller"], restored.Genres);
        Assert.Empty(graph.Node(NodeType.User, "nobody").Genres);
    }

    [Fact]
    public async Task A_node_uses_the_operators_mapping_when_it_has_it_and_maps_the_events_itself_when_not()
    {
        KeystoneEvent[] catalogue = [G.Content("v1", "s1", "drama"), G.Content("v2", null, "drama", "comedy")];
        KeystoneEvent[] activity =
        [
            G.Event("profile.created", G.T0, ("user_id", "u1"), ("profile_id", "p1"), ("profile_name", "Kids")),
            G.Event("user.login", G.T0, ("user_id", "u1"), ("device_id", "d1"), ("profile_id", "p1")),
            G.Event("user.profile_switch", G.T0, ("user_id", "u1"), ("profile_id", "p2"), ("from_profile_id", "p1")),
            G.Play("u1", "v1", profile: "p1", device: "d1"), G.Play("u1", "v1", "video.play.stopped", 5_000, G.T0.AddSeconds(5), "p1", "d1"),
            G.Play("u2", "v2", profile: "p3", device: "d2"),
        ];
        var local = new MemoryGraph();
        var remote = new MemoryGraph(remote: true);
        foreach (var graph in new[] { local, remote })
        {
            await graph.Deliver(catalogue);
            await graph.Deliver(activity);
            await graph.Deliver(activity);
        }

        Assert.Equal(local.Dump(), remote.Dump());
        // Every batch with events carried one mapped update per event, for the node it went to.
        var withEvents = local.Batches.Where(b => b.Events.Count > 0).ToList();
        Assert.NotEmpty(withEvents);
        Assert.All(withEvents, b => Assert.Equal(b.Events.Count, b.Updates?.Count));
        Assert.Contains(local.Nodes, n => n.Key.Item1 == NodeType.Profile && n.Value.State.Properties.GetValueOrDefault("profile_name") == "Kids");

        // The mapping stays in the silo: serialised, a batch arrives without it.
        var serializer = new ServiceCollection().AddSerializer()
            .BuildServiceProvider().GetRequiredService<Serializer>();
        var received = serializer.Deserialize<GraphBatch>(serializer.SerializeToArray(withEvents[0]))!;
        Assert.Null(received.Updates);
        Assert.Equal(withEvents[0].Events.Select(e => e.EventId), received.Events.Select(e => e.EventId));
    }

    [Fact]
    public async Task A_repeated_delivery_changes_nothing_anywhere_and_reports_only_the_creations_again()
    {
        var graph = new MemoryGraph();
        KeystoneEvent[] events =
        [
            G.Content("v1", "s1", "drama"), G.Content("v2", null, "drama"),
            G.Play("u1", "v1"), G.Play("u1", "v1", "video.play.paused", 3_000, G.T0.AddSeconds(3)), G.Play("u1", "v2"), G.Play("u2", "v2"),
            G.Event("user.profile_switch", G.T0, ("user_id", "u1"), ("profile_id", "p9")),
        ];
        var first = await graph.Deliver(events);
        var dump = graph.Dump();
        var again = await graph.Deliver(events);

        Assert.Equal(dump, graph.Dump());
        Assert.Equal(0, again.EdgeUpdates);
        Assert.True(again.Duplicates >= events.Length);
        Assert.Empty(again.NodesChanged);
        // The replay re-reports exactly the edges the first delivery created (so a crash between rounds heals) …
        Assert.Equal(first.EdgeChanges.Where(c => c.Change.Created).Select(c => (c.Type, c.Id, c.Change.Label, c.Change.TargetId)).Order(),
            again.EdgeChanges.Select(c => (c.Type, c.Id, c.Change.Label, c.Change.TargetId)).Order());
        // … and a single re-sent event changes nothing either.
        await graph.Deliver(events[3]);
        Assert.Equal(dump, graph.Dump());
    }

    [Fact]
    public void Reverse_entries_and_facts_are_idempotent_by_their_event()
    {
        var video = new GraphNode(NodeType.Video, "v", new GraphOptions(), new GraphNodeState());
        var add = new InEdgeAdd(Guid.NewGuid(), EdgeLabel.Watches, "u1", G.T0);
        var fact = new DerivedFact(add.EventId, FactKind.CoWatch, "v0", G.T0);
        Assert.Equal(2, video.Apply(new GraphBatch(0, 1, [], [add], [fact]), G.T0).Applied);
        var repeat = video.Apply(new GraphBatch(0, 2, [], [add], [fact]), G.T0);
        Assert.Equal((0, 2), (repeat.Applied, repeat.Duplicates));
        Assert.Equal(1, video.In(EdgeLabel.Watches)!.Count);
        Assert.Equal(1.0, video.State.Ranking["v0"]);
        // The same event may cause different facts here (one per co-watched partner).
        Assert.Equal(1, video.Apply(new GraphBatch(0, 3, [], [], [fact with { Other = "v7" }]), G.T0).Applied);
    }

    [Fact]
    public void Full_reverse_pages_are_handed_out_for_sealing_and_leave_the_state()
    {
        var options = new GraphOptions { PageSize = 16, DedupeCapacity = 64 };
        var video = new GraphNode(NodeType.Video, "hot", options, new GraphNodeState());
        video.Apply(new GraphBatch(0, 1, [], [.. Enumerable.Range(0, 40).Select(i => new InEdgeAdd(Guid.NewGuid(), EdgeLabel.Watches, $"u{i}", G.T0))], []), G.T0);

        var sealedEntries = new List<string>();
        while (video.FullPage() is { } page)
        {
            sealedEntries.AddRange(page.Entries.Select(e => e.Source));
            video.Sealed(page.Label, page.Page);
        }
        var list = video.In(EdgeLabel.Watches)!;
        Assert.Equal((40L, 2, 8), (list.Count, list.SealedPages, list.Head.Count));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"u{i}"), sealedEntries.Concat(list.Head.Select(e => e.Source)));
        // Sealing the same page twice (a retry) does nothing.
        video.Sealed(EdgeLabel.Watches, 0);
        Assert.Equal(8, list.Head.Count);
        Assert.True(video.RememberedIds <= 64);
    }

    [Fact]
    public async Task A_derived_ranking_stays_within_its_capacity_and_says_it_was_cut()
    {
        var graph = new MemoryGraph(new GraphOptions { RankingCapacity = 8, CoWatchPartners = 100 });
        // One user watches 20 titles: the first title co-watches with 19 others.
        for (var i = 0; i < 20; i++) await graph.Deliver(G.Play("u", $"v{i:D2}"));
        var ranking = graph.Node(NodeType.Video, "v00").Ranked(100);
        Assert.InRange(ranking.Items.Count, 8, 10);
        Assert.False(ranking.Complete);
        Assert.True(graph.Node(NodeType.Video, "v19").Ranked(100).Items.Count <= 10);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(30)]
    public void A_call_reports_each_changed_edge_once_in_first_change_order_with_its_newest_count(int titles)
    {
        // Past 16 changes the node indexes them: both ways must report the same thing.
        var user = new GraphNode(NodeType.User, "u", new GraphOptions(), new GraphNodeState());
        var events = new List<KeystoneEvent>();
        for (var i = 0; i < titles; i++) events.Add(G.Play("u", $"v{i}", device: "d"));
        events.Add(G.Play("u", "v0", type: "video.play.paused", position: 1_000, device: "d"));

        var changes = user.Apply(new GraphBatch(0, 1, events, [], []), G.T0).Changes;

        Assert.Equal([.. Enumerable.Range(0, titles).Select(i => $"v{i}"), "d"], changes.Where(c => c.Label == EdgeLabel.Watches).Select(c => c.TargetId).Append(changes.Single(c => c.Label == EdgeLabel.Uses).TargetId));
        Assert.Equal(titles + 1, changes.Count);
        var first = changes.Single(c => c.TargetId == "v0");
        Assert.Equal(2, first.Count);
        Assert.True(first.Created);
        Assert.Equal(titles + 1, changes.Single(c => c.Label == EdgeLabel.Uses).Count);
    }

    [Fact]
    public void Out_edge_pages_follow_creation_order_and_skip_other_labels()
    {
        var user = new GraphNode(NodeType.User, "u", new GraphOptions(), new GraphNodeState());
        var events = new List<KeystoneEvent>();
        for (var i = 0; i < 5; i++) events.Add(G.Play("u", $"v{i}", device: $"d{i}"));
        user.Apply(new GraphBatch(0, 1, events, [], []), G.T0);
        var watches = new HashSet<EdgeLabel> { EdgeLabel.Watches };

        var (page1, next1) = user.OutPage(watches, 0, 2, _ => null);
        Assert.Equal(["v0", "v1"], page1.Select(e => e.Id));
        var (page2, next2) = user.OutPage(watches, next1!.Value, 2, _ => null);
        Assert.Equal(["v2", "v3"], page2.Select(e => e.Id));
        var (page3, next3) = user.OutPage(watches, next2!.Value, 2, _ => null);
        Assert.Equal(["v4"], page3.Select(e => e.Id));
        Assert.Null(next3);
        Assert.Equal(5, user.OutCount(watches));
        Assert.Equal(10, user.OutCount(new HashSet<EdgeLabel> { EdgeLabel.Watches, EdgeLabel.Uses }));
    }
}

public class EdgeCursorTests
{
    [Theory]
    [InlineData(EdgeDirection.Out, 0, 0)]
    [InlineData(EdgeDirection.Out, 0, 123_456)]
    [InlineData(EdgeDirection.In, 1, 99_999_999_999)]
    public void A_cursor_round_trips(EdgeDirection direction, int label, long position)
    {
        var cursor = EdgeCursor.Encode(direction, label, position);
        Assert.Matches("^[A-Za-z0-9_-]+$", cursor);
        Assert.True(EdgeCursor.TryDecode(cursor, direction, out var l, out var p));
        Assert.Equal((label, position), (l, p));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("bm9wZQ")] // "nope"
    [InlineData("aS4wLi0x")] // "i.0.-1"
    [InlineData("aS45LjE")] // "i.9.1": no such label index
    public void Anything_else_is_refused(string cursor) => Assert.False(EdgeCursor.TryDecode(cursor, EdgeDirection.In, out _, out _));

    [Fact]
    public void A_cursor_of_the_other_direction_is_refused() =>
        Assert.False(EdgeCursor.TryDecode(EdgeCursor.Encode(EdgeDirection.Out, 0, 5), EdgeDirection.In, out _, out _));

    [Fact]
    public void No_cursor_means_the_start() => Assert.True(EdgeCursor.TryDecode(null, EdgeDirection.Out, out var l, out var p) && l == 0 && p == 0);
}

public class GraphRankingTests
{
    /// <summary>
    /// Hand-built: alice watched A, B. Viewers of A: bob (A, C, D), carol (A, B, E); viewers of B: carol, dave (B, C).
    /// Two-hop paths from alice to unseen titles: C via (A,bob) and (B,dave) = 2; D via (A,bob) = 1; E via (A,carol)
    /// and (B,carol) = 2. Expected: C and E (2, tie by id), then D.
    /// </summary>
    private static readonly Dictionary<string, string[]> Watched = new()
    {
        ["alice"] = ["A", "B"], ["bob"] = ["A", "C", "D"], ["carol"] = ["A", "B", "E"], ["dave"] = ["B", "C"],
    };

    [Fact]
    public void Also_watched_ranks_the_hand_built_graph_as_worked_out()
    {
        // Co-watch counts as the videos hold them: for each title, the other titles of each of its viewers.
        Ranking CoWatched(string title) => new([.. Watched.Where(w => w.Value.Contains(title)).SelectMany(w => w.Value.Where(v => v != title))
            .GroupBy(v => v).Select(g => new RankedId(g.Key, g.Count()))], true);
        var ranked = GraphRanking.AlsoWatched(new Dictionary<string, Ranking> { ["A"] = CoWatched("A"), ["B"] = CoWatched("B") }, Watched["alice"].ToHashSet(), 10);
        Assert.Equal([("C", 2.0, 2), ("E", 2.0, 2), ("D", 1.0, 1)], ranked.Select(r => (r.VideoId, r.Score, r.Paths)));
        Assert.Equal(["C", "E"], GraphRanking.AlsoWatched(new Dictionary<string, Ranking> { ["A"] = CoWatched("A"), ["B"] = CoWatched("B") }, Watched["alice"].ToHashSet(), 2).Select(r => r.VideoId));
    }

    [Fact]
    public async Task The_materialised_co_watch_counts_give_the_same_answer_as_the_walk()
    {
        var graph = new MemoryGraph();
        foreach (var (user, titles) in Watched)
            foreach (var title in titles) await graph.Deliver(G.Play(user, title));

        var seeds = graph.Node(NodeType.User, "alice").Out(EdgeLabel.Watches).Select(e => e.Target).ToList();
        var ranked = GraphRanking.AlsoWatched(seeds.ToDictionary(s => s, s => graph.Node(NodeType.Video, s).Ranked(100)), seeds.ToHashSet(), 10);
        Assert.Equal([("C", 2.0), ("E", 2.0), ("D", 1.0)], ranked.Select(r => (r.VideoId, r.Score)));
    }

    [Fact]
    public void Recommendations_weigh_genre_preference_by_title_popularity_and_skip_what_was_played()
    {
        var titles = new Dictionary<string, Ranking>
        {
            ["drama"] = new([new("d-popular", 100), new("d-niche", 1), new("played", 500)], true),
            ["comedy"] = new([new("c-popular", 100)], true),
        };
        var ranked = GraphRanking.Recommendations([("drama", 3.0), ("comedy", 1.0)], titles, new HashSet<string> { "played" }, 10);
        // d-popular 3·(1+ln 101) = 16.8; c-popular 1·(1+ln 101) = 5.6; d-niche 3·(1+ln 2) = 5.1.
        Assert.Equal(["d-popular", "c-popular", "d-niche"], ranked.Select(r => r.VideoId));
        Assert.Equal(3 * (1 + Math.Log(101)), ranked[0].Score, 3);
    }
}

public class GraphOptionsTests
{
    [Fact]
    public void The_defaults_are_valid() => Assert.Empty(new GraphOptions().Problems());

    [Fact]
    public void A_memory_of_ids_shorter_than_the_barrier_period_is_refused() =>
        Assert.Contains(new GraphOptions { DedupeHorizon = TimeSpan.FromSeconds(10) }.Problems(), p => p.Contains("DedupeHorizon", StringComparison.Ordinal));

    [Fact]
    public void A_bad_changes_topic_is_refused() =>
        Assert.Contains(new GraphOptions { ChangesTopic = "bad topic" }.Problems(), p => p.Contains("ChangesTopic", StringComparison.Ordinal));
}

public class FaultOptionsTests
{
    [Fact]
    public void Only_an_event_carrying_the_marker_is_poison_and_only_when_a_marker_is_set()
    {
        var marked = G.Event("video.play.started", G.T0, ("user_id", "u"), ("session_id", "boom"));
        var plain = G.Event("video.play.started", G.T0, ("user_id", "u"), ("session_id", "fine"));
        Assert.True(new FaultOptions { RouterPoisonMarker = "boom" }.IsRouterPoison(marked));
        Assert.False(new FaultOptions { RouterPoisonMarker = "boom" }.IsRouterPoison(plain));
        Assert.False(new FaultOptions().IsRouterPoison(marked));
        Assert.False(new FaultOptions { RouterPoisonMarker = "" }.IsRouterPoison(marked));
    }
}
