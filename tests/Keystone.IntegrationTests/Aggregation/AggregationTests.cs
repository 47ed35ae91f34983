using Keystone.Storage;
using Keystone.Client.Querying;
using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Topics;
using Orleans.Runtime;

namespace Keystone.IntegrationTests.Aggregation;

/// <summary>Event-time windows, watermarks and checkpointed User/Video/Profile state, on a real silo and Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AggregationTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 5, 10, 0, 0, TimeSpan.Zero);

    private static Dictionary<string, string?> Settings(AzuriteFixture azurite)
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Aggregation:WindowSize"] = "00:01:00";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        // Operators checkpoint at the first barrier after their interval: barriers every second, too.
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        return settings;
    }

    private static async Task<JsonNode> Get(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static async Task<JsonNode?> ActivityOrNull(HttpClient http, string user)
    {
        var response = await http.GetAsync($"/v1/users/{user}/activity");
        return response.StatusCode == HttpStatusCode.NotFound ? null : JsonNode.Parse(await response.Content.ReadAsStringAsync());
    }

    private static async Task Post(HttpClient http, IEnumerable<KeystoneEvent> events)
    {
        var response = await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Empty(body["rejected"]!.AsArray());
    }

    private static async Task<OperatorStats[]> Operators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    [Fact]
    public async Task A_scripted_stream_gives_exactly_the_expected_windows_totals_and_late_output_and_survives_a_restart()
    {
        var settings = Settings(azurite);
        var script = new PlaybackScript();
        script.Session("agg-alice", "agg-alice-p1", "alice-tv", "agg-video-1", T0, quality: "4K", genre: "drama");
        script.Session("agg-bob", "agg-bob-p1", "bob-phone", "agg-video-1", T0.AddSeconds(5), quality: "HD", genre: "drama");

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            await Post(silo.Http, script.Events);
            await Eventually.Until(async () => (await Operators(silo)).Sum(o => o.Events), n => n == 8, TimeSpan.FromSeconds(20), "8 events at the operators");

            // The script's own events moved the watermark to 10:01:40 (10:01:45 − 5 s): the 10:00 window has fired,
            // the 10:01 window has not.
            // (The operators count a delivery when they take it; its windows fire when it has been applied.)
            await Eventually.Until(async () => string.Join(",", (await Get(silo.Http, "/v1/users/agg-alice/activity"))["windows"]!.AsArray().Select(w => w!["closed"]!.GetValue<bool>())),
                closed => closed == "True,False", TimeSpan.FromSeconds(20), "alice's first window to close and her second to stay open");

            // Move every partition's watermark to 10:04:55 (10:05 − 5 s): both 1-minute windows of the script close.
            await Post(silo.Http, PlaybackScript.Flush(4, T0.AddMinutes(5)));
            await Eventually.Until(async () => (await Get(silo.Http, "/v1/users/agg-alice/activity"))["windows"]!.AsArray().All(w => w!["closed"]!.GetValue<bool>()),
                closed => closed, TimeSpan.FromSeconds(20), "alice's windows to close");

            var alice = await Get(silo.Http, "/v1/users/agg-alice/activity");
            var windows = alice["windows"]!.AsArray();
            Assert.Equal(2, windows.Count);
            // 10:00 window: start + pause, 30 s watched (0 → 30 s). 10:01 window: resume + stop, 30 s more (30 → 60 s).
            AssertWindow(windows[0]!, "2026-01-05T10:00:00+00:00", plays: 1, pauses: 1, resumes: 0, stops: 0, watchMs: 30_000);
            AssertWindow(windows[1]!, "2026-01-05T10:01:00+00:00", plays: 0, pauses: 0, resumes: 1, stops: 1, watchMs: 30_000);
            var totals = alice["totals"]!;
            Assert.Equal(4, totals["events"]!.GetValue<long>());
            Assert.Equal(60_000, totals["watch_ms"]!.GetValue<long>());
            Assert.Equal(1, totals["sessions"]!.GetValue<long>());
            Assert.Equal(100_000, (DateTimeOffset.Parse(alice["current_session"]!["last_activity"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) - T0).TotalMilliseconds);

            // The typed Orleans client sees the same state.
            var query = await KeystoneQueryClient.ConnectAsync(silo.Client);
            var typed = await query.GetUserActivityAsync("agg-alice");
            Assert.NotNull(typed);
            Assert.Equal((4L, 60_000L), (typed.Totals.Events, typed.Totals.WatchMs));
            Assert.Equal(120_000, (await query.GetVideoStatsAsync("agg-video-1"))!.Totals.WatchMs);
            Assert.Equal(60_000, (await query.GetProfileAsync("agg-alice-p1"))!.WatchMs);
            Assert.Null(await query.GetUserActivityAsync("nobody-at-all"));
            await Assert.ThrowsAsync<ArgumentException>(() => query.GetUserActivityAsync("a/b"));

            var video = await Get(silo.Http, "/v1/videos/agg-video-1/stats");
            Assert.Equal(2, video["totals"]!["starts"]!.GetValue<long>());
            Assert.Equal(2, video["totals"]!["unique_viewers"]!.GetValue<long>());
            Assert.Equal(120_000, video["totals"]!["watch_ms"]!.GetValue<long>());
            Assert.Equal(1, video["totals"]!["quality"]!["4k"]!.GetValue<long>());
            Assert.Equal(1, video["totals"]!["quality"]!["hd"]!.GetValue<long>());
            Assert.Equal(["drama"], video["genres"]!.AsArray().Select(g => g!.GetValue<string>()));

            var profile = await Get(silo.Http, "/v1/profiles/agg-alice-p1");
            Assert.Equal(1, profile["plays"]!.GetValue<long>());
            Assert.Equal(60_000, profile["watch_ms"]!.GetValue<long>());
            var top = profile["top_genres"]!.AsArray().Single()!;
            Assert.Equal("drama", top["genre"]!.GetValue<string>());
            // 0.5 min decayed over 70 s with a 7-day half-life, plus 0.5 min: 0.99996, rounded to four places.
            Assert.Equal(1.0, top["score"]!.GetValue<double>(), 4);

            // The window results reached the stats topic, and a recommendation trigger per closed window.
            var stats = await Get(silo.Http, "/v1/topics/user-activity-stats/events?limit=100");
            var aliceResults = stats["events"]!.AsArray().Where(e => e!["event"]!["payload"]!["user_id"]!.GetValue<string>() == "agg-alice").ToList();
            Assert.Equal(2, aliceResults.Count);
            Assert.Equal(60_000, aliceResults.Sum(e => e!["event"]!["payload"]!["watch_time_ms"]!.GetValue<long>()));
            Assert.True(await silo.DeliveredAsync("recommendation-triggers") >= 4);

            // A repeat changes nothing; an event for a closed window (lateness 0) goes to the late side output.
            await Post(silo.Http, [script.Events[0]]);
            var late = script.Events[1] with { EventId = Guid.NewGuid(), Timestamp = T0.AddSeconds(10) };
            await Post(silo.Http, [late]);
            await Eventually.Until(async () => (await Operators(silo)).Sum(o => o.TooLate), n => n == 1, TimeSpan.FromSeconds(20), "one too-late event");
            await Eventually.Until(() => silo.DeliveredAsync("late-events"), n => n >= 1, TimeSpan.FromSeconds(20), "the too-late event in the side output");
            Assert.Equal(1, await silo.DeliveredAsync("late-events"));
            var after = await Get(silo.Http, "/v1/users/agg-alice/activity");
            Assert.Equal(4, after["totals"]!["events"]!.GetValue<long>());
            Assert.Equal(60_000, after["totals"]!["watch_ms"]!.GetValue<long>());

            // Wait for a checkpoint that covers everything.
            await Eventually.Until(async () => (await Operators(silo)).All(o => o.CheckpointedSequence == o.Sequence), done => done, TimeSpan.FromSeconds(20), "a complete checkpoint");
        }

        // The state is in blobs, in the documented snapshot format: readable without a silo...
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        var states = await SnapshotStore.ReadAllAsync(container);
        // The user grain has two states: its activity (this one) and its graph side.
        var userBlob = states.Where(kv => kv.Key.StartsWith("activity|", StringComparison.Ordinal) && kv.Key.EndsWith("/agg-alice", StringComparison.Ordinal))
            .Select(kv => JsonNode.Parse(kv.Value)).SingleOrDefault();
        Assert.NotNull(userBlob);
        Assert.Equal(4, userBlob!["totals"]!["events"]!.GetValue<long>());
        Assert.Equal(60_000, userBlob["totals"]!["watchMs"]!.GetValue<long>());

        // ...and a new silo on the same storage answers the same.
        await using var again = await TestSilo.StartAsync(settings);
        var restored = await Get(again.Http, "/v1/users/agg-alice/activity");
        Assert.Equal(4, restored["totals"]!["events"]!.GetValue<long>());
        Assert.Equal(60_000, restored["totals"]!["watch_ms"]!.GetValue<long>());
        Assert.Equal(2, restored["windows"]!.AsArray().Count);
        var restoredVideo = await Get(again.Http, "/v1/videos/agg-video-1/stats");
        Assert.Equal(2, restoredVideo["totals"]!["unique_viewers"]!.GetValue<long>());
    }

    [Fact]
    public async Task An_idle_user_leaves_memory_after_its_lifetime_and_comes_back_with_exactly_its_counts()
    {
        var settings = Settings(azurite);
        settings["Keystone:Aggregation:IdleEntityLifetime"] = "00:00:03";
        // The user's graph side is checkpointed by the graph operators: at the same pace, so that neither keeps calling it.
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        var script = new PlaybackScript();
        script.Session("idle-carol", "idle-carol-p1", "carol-tv", "idle-video-1", T0);
        await using var silo = await TestSilo.StartAsync(settings);
        await Post(silo.Http, script.Events);
        // Her 4 events, and the watermark they made (10:01:40) closed her 10:00 window and not her 10:01 one.
        static string Closed(JsonNode a) => string.Join(",", a["windows"]!.AsArray().Select(w => w!["closed"]!.GetValue<bool>()));
        var before = (await Eventually.Until(() => ActivityOrNull(silo.Http, "idle-carol"), a => a?["totals"]!["events"]!.GetValue<long>() == 4 && Closed(a) == "True,False",
            TimeSpan.FromSeconds(20), "carol's 4 events and her first window closed"))!;

        // Once her operators have checkpointed her and nothing calls her, Orleans collects the activation.
        var management = silo.Client.GetGrain<IManagementGrain>(0);
        var carol = (GrainReference)silo.Client.GetGrain<IUserGrain>("idle-carol");
        await Eventually.Until(() => management.GetGrainActivationCount(carol), n => n == 0, TimeSpan.FromSeconds(60), "carol's activation to be collected");

        // A query brings her back from her snapshot, with the same windows and totals. Her bucket kept what it wrote
        // for her: no storage request brings her back (every state of this silo was written by it, so none of its
        // "activity" states is read from storage).
        var store = silo.Services.GetRequiredService<SnapshotStore>();
        var (warmReads, storageReads) = (store.Warm.Reads, store.StateReads().GetValueOrDefault("activity"));
        var after = await Get(silo.Http, "/v1/users/idle-carol/activity");
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
        Assert.Equal(1, await management.GetGrainActivationCount(carol));
        Assert.True(store.Warm.Reads > warmReads, $"{store.Warm.Reads - warmReads} state reads from the buckets' memory");
        Assert.Equal(storageReads, store.StateReads().GetValueOrDefault("activity"));

        // And she counts on from there: a second session, no event counted twice.
        var next = new PlaybackScript();
        next.Session("idle-carol", "idle-carol-p1", "carol-tv", "idle-video-1", T0.AddMinutes(10));
        await Post(silo.Http, next.Events);
        var more = (await Eventually.Until(() => ActivityOrNull(silo.Http, "idle-carol"), a => a?["totals"]!["events"]!.GetValue<long>() >= 8,
            TimeSpan.FromSeconds(20), "carol's second session"))!;
        Assert.Equal(8, more["totals"]!["events"]!.GetValue<long>());
        Assert.Equal(2, more["totals"]!["plays"]!.GetValue<long>());
        Assert.Equal(120_000, more["totals"]!["watch_ms"]!.GetValue<long>());
    }

    [Fact]
    public async Task Queries_validate_their_parameters_and_unknown_ids_are_404()
    {
        var silo = await azurite.SharedSiloAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.GetAsync("/v1/users/nobody-at-all/activity")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.GetAsync("/v1/videos/no-such-video/stats")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.GetAsync("/v1/profiles/no-such-profile")).StatusCode);
        var badTime = await silo.Http.GetAsync("/v1/users/someone/activity?from=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, badTime.StatusCode);
        Assert.Contains("'from' must be an ISO-8601 date-time", await badTime.Content.ReadAsStringAsync());
        var reversed = await silo.Http.GetAsync("/v1/users/someone/activity?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z");
        Assert.Equal(HttpStatusCode.BadRequest, reversed.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await silo.Http.GetAsync($"/v1/users/{new string('x', 200)}/activity")).StatusCode);
    }

    private static void AssertWindow(JsonNode w, string start, long plays, long pauses, long resumes, long stops, long watchMs)
    {
        Assert.Equal(start, w["window"]!["start"]!.GetValue<string>());
        Assert.Equal(plays, w["plays"]!.GetValue<long>());
        Assert.Equal(pauses, w["pauses"]!.GetValue<long>());
        Assert.Equal(resumes, w["resumes"]!.GetValue<long>());
        Assert.Equal(stops, w["stops"]!.GetValue<long>());
        Assert.Equal(watchMs, w["watch_ms"]!.GetValue<long>());
        Assert.True(w["closed"]!.GetValue<bool>());
    }
}
