using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Graph;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Storage;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Entity ids: one rule at the door, and storage names any storage client can list and read.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class EntityIdTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_reference_built_from_cached_grain_types_is_the_grain_the_factory_names_and_answers_for_it()
    {
        var silo = await azurite.SharedSiloAsync();
        var user = "grainrefs-josé-ñ";
        Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([TestEvents.Play(user, "grainrefs-video")])))).StatusCode);
        // The first call resolves the grain and interface types, the second builds the reference from them.
        foreach (var _ in new[] { 1, 2 })
        {
            var cached = GrainRefs.Get<IUserGrain>(silo.Client, user);
            Assert.Equal(silo.Client.GetGrain<IUserGrain>(user).GetGrainId(), cached.GetGrainId());
            Assert.Equal(silo.Client.GetGrain<IVertexGrain>("genre:x").GetGrainId(), GrainRefs.Get<IVertexGrain>(silo.Client, "genre:x").GetGrainId());
        }
        // Asked again, the reference comes from the table; a key not asked before is built from the resolved types.
        Assert.Same(GrainRefs.Get<IUserGrain>(silo.Client, user), GrainRefs.Get<IUserGrain>(silo.Client, user));
        Assert.Equal(silo.Client.GetGrain<IUserGrain>(user + "-2").GetGrainId(), GrainRefs.Get<IUserGrain>(silo.Client, user + "-2").GetGrainId());
        var view = await Eventually.Until(() => GrainRefs.Get<IUserGrain>(silo.Client, user).GetActivity(null, null), v => v?.Totals.Events == 1, TimeSpan.FromSeconds(30), "the play counted");
        Assert.Equal(1, view!.Totals.Events);
    }

    [Fact]
    public async Task Bad_ids_are_rejected_at_ingest_with_the_field_named_and_good_events_beside_them_go_through()
    {
        var silo = await azurite.SharedSiloAsync();
        var good = TestEvents.Play("ids-good-josé", "ids-video");
        var events = new[]
        {
            TestEvents.Play("ids-nul\0\u202Egnp.exe", "ids-video"),
            TestEvents.Play("ids with space", "ids-video"),
            TestEvents.Play("ids-user", "ids/slash"),
            good,
            TestEvents.AdImpression("ids-user", campaign: "camp\u200Baign"),
        };

        var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(1, body["accepted"]!.GetValue<int>());
        var rejected = body["rejected"]!.AsArray().Select(r => (Index: r!["index"]!.GetValue<int>(), Field: r["field"]!.GetValue<string>(), Error: r["error"]!.GetValue<string>())).ToList();
        Assert.Equal([(0, "payload.user_id"), (1, "payload.user_id"), (2, "payload.video_id"), (4, "payload.campaign_id")], rejected.Select(r => (r.Index, r.Field)));
        Assert.All(rejected, r => Assert.StartsWith(r.Field + ": must not contain", r.Error));
        Assert.Contains("control characters (U+0000", rejected[0].Error);
        Assert.Contains("whitespace", rejected[1].Error);
        Assert.Contains("'/'", rejected[2].Error);
        Assert.Contains("invisible", rejected[3].Error);

        // The same rule guards the read side.
        Assert.Equal(HttpStatusCode.BadRequest, (await silo.Http.GetAsync("/v1/users/ids%20with%20space/activity")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await silo.Http.GetAsync("/v1/users/ids%E2%80%AEx/activity")).StatusCode);
    }

    [Fact]
    public async Task Odd_but_valid_ids_are_stored_under_names_an_azure_sdk_client_lists_and_reads_and_state_reloads()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        // A page is sealed to a blob of its own once a node has this many reverse entries.
        settings["Keystone:Graph:PageSize"] = "16";
        // Odd but valid: other scripts, dots (a trailing one too), and characters an encoding might use.
        string[] users = ["josé-ñ", "用户.1", "a.b.", "~tilde", "%2Fnot-a-slash", "Ωmega"];
        const string video = "视频.1.";
        const string genre = "ciencia-ficción";
        const string series = "série.1";
        var viewers = Enumerable.Range(0, 17).Select(i => $"zuschauer-ü-{i}").ToArray();
        var at = DateTimeOffset.UtcNow.AddMinutes(-1);
        var events = users.Concat(viewers).Select(u => TestEvents.Play(u, video, at: at)).ToList();
        events.Add(new KeystoneEvent(Guid.NewGuid(), "content.added", at, "1.0", new EventSource("catalogue-service"),
            Payload.Create(("video_id", video), ("title", "Película"), ("series_id", series), ("genres", new[] { genre, "drama" })), EventMetadata.Empty));

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Empty(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["rejected"]!.AsArray());

            // Catalogue events feed the window operators too (titles' series and genres).
            await Eventually.Until(async () => (await ActivityOperators(silo)).Sum(o => o.Events), n => n == events.Count, TimeSpan.FromSeconds(30), $"{events.Count} events at the window operators");
            await Eventually.Until(async () => (await GraphOperators(silo)).Sum(o => o.Events), n => n == events.Count, TimeSpan.FromSeconds(30), $"{events.Count} events at the graph operators");
            await Eventually.Until(async () => (await ActivityOperators(silo)).All(o => o.CheckpointedSequence == o.Sequence), done => done, TimeSpan.FromSeconds(30), "a complete activity checkpoint");
            await Eventually.Until(async () => (await GraphOperators(silo)).All(o => o.CheckpointedSequence == o.Sequence && o.Invalid == 0), done => done, TimeSpan.FromSeconds(30), "a complete graph checkpoint");
        }

        // Every blob of both containers lists (the whole container, then each entity-state prefix) and reads.
        var blobs = new BlobServiceClient(azurite.ConnectionString);
        var state = await ListAndRead(blobs.GetBlobContainerClient(settings["Keystone:Storage:Container"]));
        var graph = await ListAndRead(blobs.GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-graph"));
        foreach (var prefix in state.Select(n => n[..(n.IndexOf('/') + 1)]).Distinct())
        {
            var listed = new List<string>();
            await foreach (var blob in blobs.GetBlobContainerClient(settings["Keystone:Storage:Container"]).GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, prefix, CancellationToken.None)) listed.Add(blob.Name);
            Assert.Equal(state.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        }

        Assert.All(state.Concat(graph), name => Assert.All(name, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '~' or '/', $"'{c}' in {name}")));
        // Grain state sits in snapshot segments (many states per blob) whose keys are the ids exactly as sent.
        Assert.All(state, name => Assert.True(SnapshotStore.TryParseName(name, out _, out _), name));
        var keys = (await SnapshotStore.ReadAllAsync(blobs.GetBlobContainerClient(settings["Keystone:Storage:Container"]))).Keys.ToHashSet();
        foreach (var user in users.Concat(viewers))
            Assert.Contains(keys, k => k.StartsWith("activity|", StringComparison.Ordinal) && k.EndsWith("/" + user, StringComparison.Ordinal));
        Assert.Contains(keys, k => k.StartsWith("stats|", StringComparison.Ordinal) && k.EndsWith("/" + video, StringComparison.Ordinal));
        Assert.Contains(keys, k => k.EndsWith($"/genre/{genre}", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.EndsWith($"/series/{series}", StringComparison.Ordinal));
        // Graph pages are blobs of their own, under encoded names that decode back to exactly the ids that were sent.
        Assert.Contains($"video/{StorageNames.Segment(video)}/WATCHES/00000000.json", graph);
        Assert.Equal(video, StorageNames.DecodeSegment(graph.First(n => n.StartsWith("video/", StringComparison.Ordinal)).Split('/')[1]));

        // A new silo on the same storage finds the state again.
        await using var again = await TestSilo.StartAsync(settings);
        foreach (var user in users)
        {
            var activity = JsonNode.Parse(await again.Http.GetStringAsync($"/v1/users/{Uri.EscapeDataString(user)}/activity"))!;
            Assert.Equal(1, activity["totals"]!["events"]!.GetValue<long>());
        }
        var stats = JsonNode.Parse(await again.Http.GetStringAsync($"/v1/videos/{Uri.EscapeDataString(video)}/stats"))!;
        Assert.Equal(users.Length + viewers.Length, stats["totals"]!["starts"]!.GetValue<long>());
    }

    private static async Task<List<string>> ListAndRead(BlobContainerClient container)
    {
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            names.Add(blob.Name);
            Assert.True((await container.GetBlobClient(blob.Name).DownloadContentAsync()).Value.Content.ToMemory().Length > 0, blob.Name);
        }
        Assert.NotEmpty(names);
        return names;
    }

    private static async Task<OperatorStats[]> ActivityOperators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    private static async Task<GraphOperatorStats[]> GraphOperators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IGraphOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));
}
