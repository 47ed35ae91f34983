using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Graph;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Silo.Hosting;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Graph;

/// <summary>The real-time graph on a real silo and Azurite: a scripted stream with hand-worked answers.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class GraphTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 2, 1, 20, 0, 0, TimeSpan.Zero);

    private static Dictionary<string, string?> Settings(AzuriteFixture azurite)
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Graph:PageSize"] = "1000";
        // The script is dated February: the archive keeps such old hours in its blob list only until its next manifest
        // flush, and it writes at checkpoint barriers. Barriers every second keep the archive step of this test short.
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        return settings;
    }

    private static KeystoneEvent Event(string type, DateTimeOffset at, params (string, object?)[] payload) =>
        new(Guid.NewGuid(), type, at, "1.0", new EventSource("graph-test", "smart_tv", "us-east-1"), Payload.Create(payload), EventMetadata.Empty);

    private static KeystoneEvent Content(string video, string? series, params string[] genres)
    {
        List<(string, object?)> fields = [("video_id", video), ("title", "Title " + video), ("genres", genres), ("duration_ms", 3_600_000L)];
        if (series is not null) fields.Add(("series_id", series));
        return Event("content.added", T0.AddMinutes(-10), [.. fields]);
    }

    /// <summary>A viewing: start at 0, stop after <paramref name="seconds"/> of play (watch time = seconds).</summary>
    private static IEnumerable<KeystoneEvent> Watch(string user, string profile, string device, string video, DateTimeOffset at, int seconds)
    {
        (string, object?)[] Fields(long position) =>
            [("user_id", user), ("profile_id", profile), ("video_id", video), ("device_id", device), ("position_ms", position), ("quality", "HD")];
        yield return Event("video.play.started", at, Fields(0));
        yield return Event("video.play.stopped", at.AddSeconds(seconds), Fields(seconds * 1000L));
    }

    /// <summary>
    /// Catalogue: v1 (series s1; drama, thriller), v2 (s1; drama), v3 (comedy), v4 (drama), v5 (thriller).
    /// Watching, in each user's order: u1: v1 (60 s), v2 (30 s); u2: v1, v3, v5; u3: v1, v2, v4.
    /// </summary>
    private static (List<KeystoneEvent> Catalog, List<KeystoneEvent> Activity) Script()
    {
        List<KeystoneEvent> catalog = [Content("gv1", "gs1", "drama", "thriller"), Content("gv2", "gs1", "drama"), Content("gv3", null, "comedy"), Content("gv4", null, "drama"), Content("gv5", null, "thriller")];
        var activity = new List<KeystoneEvent>
        {
            Event("profile.created", T0, ("user_id", "gu1"), ("profile_id", "gp1"), ("profile_name", "Kids"), ("maturity_level", "kids")),
            Event("profile.created", T0, ("user_id", "gu2"), ("profile_id", "gp2")),
            Event("profile.created", T0, ("user_id", "gu3"), ("profile_id", "gp3")),
            Event("user.login", T0.AddSeconds(1), ("user_id", "gu1"), ("device_id", "gd1"), ("profile_id", "gp1"), ("method", "password")),
        };
        activity.AddRange(Watch("gu1", "gp1", "gd1", "gv1", T0.AddMinutes(1), 60));
        activity.AddRange(Watch("gu1", "gp1", "gd1", "gv2", T0.AddMinutes(3), 30));
        activity.AddRange(Watch("gu2", "gp2", "gd2", "gv1", T0.AddMinutes(1), 10));
        activity.AddRange(Watch("gu2", "gp2", "gd2", "gv3", T0.AddMinutes(2), 10));
        activity.AddRange(Watch("gu2", "gp2", "gd2", "gv5", T0.AddMinutes(3), 10));
        activity.AddRange(Watch("gu3", "gp3", "gd3", "gv1", T0.AddMinutes(1), 10));
        activity.AddRange(Watch("gu3", "gp3", "gd3", "gv2", T0.AddMinutes(2), 10));
        activity.AddRange(Watch("gu3", "gp3", "gd3", "gv4", T0.AddMinutes(3), 10));
        return (catalog, activity);
    }

    private static async Task Post(HttpClient http, IEnumerable<KeystoneEvent> events)
    {
        var response = await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, text);
        Assert.Empty(JsonNode.Parse(text)!["rejected"]!.AsArray());
    }

    private static async Task<JsonNode> Get(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        // A failure here has been a call that waited 30 s on a silo; what the silos logged meanwhile says why.
        if (!response.IsSuccessStatusCode)
            Assert.Fail($"GET {path}: {(int)response.StatusCode} {text}; warnings the in-process silos logged meanwhile: {RecentWarnings.Instance.Describe(TimeSpan.FromMinutes(1))}");
        return JsonNode.Parse(text)!;
    }

    private static async Task<(HttpStatusCode, string)> Status(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<GraphOperatorStats[]> Operators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IGraphOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    /// <summary>Waits until the operators have taken <paramref name="events"/> events, then until each has finished its
    /// delivery (a checkpoint request queues behind it).</summary>
    private static async Task Drained(TestSilo silo, int events)
    {
        await Eventually.Until(async () => (await Operators(silo)).Sum(o => o.Events), n => n == events, TimeSpan.FromSeconds(30), $"{events} events at the graph operators");
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IGraphOperatorGrain>(StreamNames.PartitionKey(p)).CheckpointNow()));
    }

    private static string[] Ids(JsonNode page) => [.. page["edges"]!.AsArray().Select(e => e!["id"]!.GetValue<string>()).Order(StringComparer.Ordinal)];

    private static string[] Ranked(JsonNode result) => [.. result["videos"]!.AsArray().Select(v => v!["video_id"]!.GetValue<string>())];

    /// <summary>Everything the queries answer for the script, as one string: equal strings mean an unchanged graph.</summary>
    private static async Task<string> Snapshot(HttpClient http)
    {
        var parts = new List<string>();
        foreach (var path in new[]
        {
            "/v1/graph/users/gu1", "/v1/graph/users/gu1/edges?limit=100", "/v1/graph/users/gu3/edges?limit=100",
            "/v1/graph/videos/gv1", "/v1/graph/videos/gv1/edges?direction=in&limit=100", "/v1/graph/videos/gv1/edges",
            "/v1/graph/genres/drama/edges?direction=in&limit=100", "/v1/graph/profiles/gp1/edges", "/v1/graph/devices/gd1/edges?direction=in",
            "/v1/graph/series/gs1/edges?direction=in", "/v1/graph/users/gu1/also-watched", "/v1/graph/profiles/gp1/recommendations",
        })
        {
            var node = await Get(http, path);
            // PREFERS weights follow the aggregations' affinity, which has its own pace; the graph's facts must not move.
            foreach (var edge in node["edges"]?.AsArray() ?? [])
                if (edge!["label"]!.GetValue<string>() == "PREFERS") edge.AsObject().Remove("weight");
            if (node["videos"] is JsonArray videos)
                foreach (var v in videos) v!.AsObject().Remove("score");
            parts.Add(path + " " + node.ToJsonString());
        }
        return string.Join("\n", parts);
    }

    [Fact]
    public async Task A_scripted_stream_gives_the_exact_edges_and_rankings_a_duplicate_replay_changes_nothing_and_a_restart_keeps_the_graph()
    {
        var settings = Settings(azurite);
        var (catalog, activity) = Script();
        string before;

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            // The catalogue first, so every play finds its title's genres (the operator's enrichment).
            await Post(silo.Http, catalog);
            await Drained(silo, catalog.Count);
            await Post(silo.Http, activity);
            await Drained(silo, catalog.Count + activity.Count);
            Assert.Equal(0, (await Operators(silo)).Sum(o => o.Invalid));
            var operators = (await Get(silo.Http, "/v1/graph/operators")).AsArray();
            Assert.Equal(4, operators.Count);
            Assert.Equal(catalog.Count + activity.Count, operators.Sum(o => o!["events"]!.GetValue<long>()));
            // Forward edges: users 4 + 5 + 5 (HAS, USES, WATCHES), titles 8 (BELONGS_TO, HAS_GENRE), profiles 2 + 3 + 2 (PREFERS).
            Assert.Equal(29, operators.Sum(o => o!["edges_created"]!.GetValue<long>()));

            // Node and one hop, both directions.
            var user = await Get(silo.Http, "/v1/graph/users/gu1");
            Assert.Equal("user", user["type"]!.GetValue<string>());
            var degrees = user["degrees"]!.AsArray().ToDictionary(d => d!["label"]!.GetValue<string>() + "/" + d["direction"]!.GetValue<string>(), d => d!["count"]!.GetValue<long>());
            Assert.Equal(new Dictionary<string, long> { ["WATCHES/out"] = 2, ["HAS/out"] = 1, ["USES/out"] = 1 }, degrees);

            var watches = await Get(silo.Http, "/v1/graph/users/gu1/edges?label=WATCHES");
            Assert.Equal(["gv1", "gv2"], Ids(watches));
            var v1 = watches["edges"]!.AsArray().Single(e => e!["id"]!.GetValue<string>() == "gv1")!;
            Assert.Equal(2, v1["count"]!.GetValue<long>());
            Assert.Equal(60_000, v1["weight"]!.GetValue<double>());
            Assert.Equal(T0.AddMinutes(1), v1["first_seen"]!.GetValue<DateTimeOffset>());
            Assert.Equal(T0.AddMinutes(2), v1["last_seen"]!.GetValue<DateTimeOffset>());

            var uses = await Get(silo.Http, "/v1/graph/users/gu1/edges?label=uses");
            Assert.Equal(["gd1"], Ids(uses));
            Assert.Equal(5, uses["edges"]![0]!["count"]!.GetValue<long>()); // the login and four playback events
            Assert.Equal(["gp1"], Ids(await Get(silo.Http, "/v1/graph/users/gu1/edges?label=HAS")));

            var viewers = await Get(silo.Http, "/v1/graph/videos/gv1/edges?direction=in&label=WATCHES");
            Assert.Equal(["gu1", "gu2", "gu3"], Ids(viewers));
            // Reverse entries carry the forward edge's properties.
            Assert.Equal(60_000, viewers["edges"]!.AsArray().Single(e => e!["id"]!.GetValue<string>() == "gu1")!["weight"]!.GetValue<double>());
            Assert.Equal(["drama", "gs1", "thriller"], Ids(await Get(silo.Http, "/v1/graph/videos/gv1/edges")));
            Assert.Equal(["gv1", "gv2"], Ids(await Get(silo.Http, "/v1/graph/series/gs1/edges?direction=in")));
            Assert.Equal(["gu1"], Ids(await Get(silo.Http, "/v1/graph/devices/gd1/edges?direction=in")));
            Assert.Equal(["gu1"], Ids(await Get(silo.Http, "/v1/graph/profiles/gp1/edges?direction=in")));
            Assert.Equal(["drama", "thriller"], Ids(await Get(silo.Http, "/v1/graph/profiles/gp1/edges?label=PREFERS")));
            var drama = await Get(silo.Http, "/v1/graph/genres/drama/edges?direction=in&limit=100");
            Assert.Equal(["gp1", "gp2", "gp3", "gv1", "gv2", "gv4"], Ids(drama));
            Assert.Equal("Kids", (await Get(silo.Http, "/v1/graph/profiles/gp1"))["properties"]!["profile_name"]!.GetValue<string>());
            Assert.Equal("Title gv3", (await Get(silo.Http, "/v1/graph/videos/gv3"))["properties"]!["title"]!.GetValue<string>());

            // Paging: three viewers, two per page.
            var first = await Get(silo.Http, "/v1/graph/videos/gv1/edges?direction=in&limit=2");
            Assert.Equal(2, first["edges"]!.AsArray().Count);
            Assert.Equal(3, first["total"]!.GetValue<long>());
            var cursor = first["next_cursor"]!.GetValue<string>();
            var second = await Get(silo.Http, $"/v1/graph/videos/gv1/edges?direction=in&limit=2&cursor={cursor}");
            Assert.Single(second["edges"]!.AsArray());
            Assert.Null(second["next_cursor"]);
            Assert.Equal(["gu1", "gu2", "gu3"], [.. Ids(first).Concat(Ids(second)).Order(StringComparer.Ordinal)]);

            // Two hops, worked by hand: via gv1 its viewers gu2 (gv3, gv5) and gu3 (gv2, gv4); via gv2, gu3 (gv1, gv4).
            // Excluding gv1 and gv2: gv4 twice, gv3 and gv5 once (tie broken by id).
            var also = await Get(silo.Http, "/v1/graph/users/gu1/also-watched");
            Assert.Equal(["gv4", "gv3", "gv5"], Ranked(also));
            Assert.Equal([2.0, 1.0, 1.0], also["videos"]!.AsArray().Select(v => v!["score"]!.GetValue<double>()));
            Assert.False(also["cut"]!.GetValue<bool>());
            // gp1 prefers drama (two plays) over thriller (one): unplayed drama gv4 first, then thriller gv5.
            Assert.Equal(["gv4", "gv5"], Ranked(await Get(silo.Http, "/v1/graph/profiles/gp1/recommendations")));

            // The typed client answers the same.
            var query = await silo.QueryAsync();
            Assert.Equal(["gv4", "gv3", "gv5"], (await query.GetAlsoWatchedAsync("gu1"))!.Videos.Select(v => v.VideoId));
            Assert.Equal(["gv4", "gv5"], (await query.GetRecommendationsAsync("gp1"))!.Videos.Select(v => v.VideoId));
            Assert.Equal(3, (await query.GetGraphEdgesAsync(NodeType.Video, "gv1", EdgeLabel.Watches, EdgeDirection.In))!.Total);
            Assert.Null(await query.GetGraphNodeAsync(NodeType.User, "nobody-here"));
            await Assert.ThrowsAsync<ArgumentException>(() => query.GetGraphEdgesAsync(NodeType.Video, "gv1", EdgeLabel.Uses));

            // Bad requests: unknown type or label, a label the type does not have, bad cursor and limit; unknown id.
            Assert.Equal(HttpStatusCode.BadRequest, (await Status(silo.Http, "/v1/graph/planets/x")).Item1);
            var (code, text) = await Status(silo.Http, "/v1/graph/users/gu1/edges?label=LIKES");
            Assert.Equal(HttpStatusCode.BadRequest, code);
            Assert.Contains("unknown edge label 'LIKES'", text);
            (code, text) = await Status(silo.Http, "/v1/graph/videos/gv1/edges?label=USES");
            Assert.Equal(HttpStatusCode.BadRequest, code);
            Assert.Contains("videos have no outgoing USES edges", text);
            Assert.Equal(HttpStatusCode.BadRequest, (await Status(silo.Http, "/v1/graph/videos/gv1/edges?direction=sideways")).Item1);
            Assert.Equal(HttpStatusCode.BadRequest, (await Status(silo.Http, "/v1/graph/videos/gv1/edges?direction=in&cursor=bm9wZQ")).Item1);
            Assert.Equal(HttpStatusCode.BadRequest, (await Status(silo.Http, "/v1/graph/videos/gv1/edges?limit=0")).Item1);
            Assert.Equal(HttpStatusCode.NotFound, (await Status(silo.Http, "/v1/graph/users/nobody-here")).Item1);
            Assert.Equal(HttpStatusCode.NotFound, (await Status(silo.Http, "/v1/graph/users/nobody-here/also-watched")).Item1);
            Assert.Equal(HttpStatusCode.NotFound, (await Status(silo.Http, "/v1/graph/genres/nothing/edges")).Item1);

            // Every change went to the changes topic.
            Assert.True(await silo.DeliveredAsync("graph-changes") > 0);

            // A duplicate replay of the whole stream changes nothing: the archive re-publishes every event straight into
            // the graph topic (past the routers' de-duplication), the way `keystone replay --to-topic` would.
            before = await Snapshot(silo.Http);
            var total = catalog.Count + activity.Count;
            await Eventually.Until(async () => (await Get(silo.Http, "/v1/archive/blobs")).AsArray().Sum(b => b!["events"]!.GetValue<long>()),
                n => n == total, TimeSpan.FromSeconds(20), "the script in the archive");
            var replay = await silo.Http.PostAsync("/v1/archive/replay", TestEvents.JsonContent(
                $$"""{"from":"{{T0.AddHours(-1):O}}","to":"{{T0.AddHours(1):O}}","to_topic":"graph-updates"}"""));
            var replayed = JsonNode.Parse(await replay.Content.ReadAsStringAsync())!;
            Assert.True(replay.IsSuccessStatusCode, replayed.ToJsonString());
            Assert.Equal(total, replayed["published"]!.GetValue<long>());
            await Drained(silo, 2 * total);
            Assert.True((await Operators(silo)).Sum(o => o.Duplicates) >= catalog.Count + activity.Count);
            Assert.Equal(before, await Snapshot(silo.Http));
        }

        // A restart on the same storage keeps the graph.
        await using (var silo = await TestSilo.StartAsync(settings))
        {
            Assert.Equal(before, await Snapshot(silo.Http));
        }
    }

    [Fact]
    public async Task A_hot_video_with_100000_viewers_keeps_one_open_page_in_its_state_and_pages_through_all_of_them()
    {
        var settings = Settings(azurite);
        await using var silo = await TestSilo.StartAsync(settings);
        var video = silo.Client.GetGrain<IVideoGrain>("hot-video");
        var at = DateTimeOffset.UtcNow;
        const int viewers = 100_000, batch = 10_000;
        var footprints = new List<GraphFootprint>();
        for (var b = 0; b < viewers / batch; b++)
        {
            var adds = Enumerable.Range(b * batch, batch).Select(i => new InEdgeAdd(Guid.NewGuid(), EdgeLabel.Watches, $"viewer-{i:D6}", at)).ToList();
            await video.ApplyGraph(new GraphBatch(0, b + 1, [], adds, []));
            await video.CheckpointGraph(0, b + 1);
            footprints.Add(await video.GetFootprint());
        }

        var last = footprints[^1];
        Assert.Equal(viewers, last.InEdges);
        Assert.Equal(100, last.SealedPages);
        Assert.True(last.InEdgesInState < 1000, $"{last.InEdgesInState} reverse entries in the state");
        // Bounded: the state after 100,000 viewers is no bigger than after 50,000 (the id memory is capped too).
        Assert.True(last.StateBytes <= footprints[4].StateBytes + 1024, $"state grew from {footprints[4].StateBytes} to {last.StateBytes} bytes");
        Assert.True(last.StateBytes < 512 * 1024, $"{last.StateBytes} bytes of state");

        // The sealed pages are their own blobs, and the stored state is as small as reported.
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(SiloSetup.GraphContainer(settings["Keystone:Storage:Container"]!));
        var pages = 0;
        await foreach (var _ in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "video/hot-video/WATCHES/", CancellationToken.None)) pages++;
        Assert.Equal(100, pages);

        // Every viewer is reachable through the paged reverse edges.
        var seen = new HashSet<string>();
        string? cursor = null;
        var requests = 0;
        do
        {
            var page = await Get(silo.Http, "/v1/graph/videos/hot-video/edges?direction=in&label=WATCHES&limit=1000&properties=false" + (cursor is null ? "" : "&cursor=" + cursor));
            foreach (var e in page["edges"]!.AsArray()) seen.Add(e!["id"]!.GetValue<string>());
            cursor = page["next_cursor"]?.GetValue<string>();
            requests++;
        } while (cursor is not null && requests < 200);
        Assert.Equal(viewers, seen.Count);
        Assert.Equal(100, requests);
    }
}
