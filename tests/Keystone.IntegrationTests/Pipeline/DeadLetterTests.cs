using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Operations;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Refused events kept in the dead-letter store, listed, replayed once their cause is fixed, and purged.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DeadLetterTests(AzuriteFixture azurite)
{
    private static async Task<JsonNode> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    [Fact]
    public async Task A_dead_letter_store_that_hangs_holds_neither_the_answer_nor_the_valid_events()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Faults:StallDeadLetterWrites"] = "true";
        settings["Keystone:DeadLetters:KeepTimeout"] = "00:00:15";
        await using var silo = await TestSilo.StartAsync(settings);
        var good = Enumerable.Range(0, 5).Select(i => (JsonNode?)TestEvents.Node(TestEvents.Play($"dlq-stall-u{i}", "dlq-stall-v"))).ToList();
        var typo = TestEvents.Node(TestEvents.Payment("dlq-stall-u9", "us-east-1"));
        typo["event_type"] = "billing.payment_procesed";

        // Answered once the keep gives up (15 s here), not when Orleans gives up on the call (30 s, a 500).
        var posting = silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(new JsonArray([.. good, typo]).ToJsonString()));
        // Meanwhile the valid events are on their way and counted as accepted (the alerts' rates read that count).
        await Eventually.Until(() => silo.DeliveredAsync("analytics-playback-events"), n => n == 5, TimeSpan.FromSeconds(10), "the five valid events on their topic while the keep hangs");
        var ingested = await Eventually.Until(() => MetricSum(silo, "keystone_ingest_events_total"), n => n >= 5, TimeSpan.FromSeconds(10), "the five counted as accepted while the keep hangs");
        Assert.Equal(5, ingested);
        Assert.False(posting.IsCompleted, "the answer came before the keep gave up");
        var response = await posting;
        var body = await Json(response);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(5, body["accepted"]!.GetValue<int>());
        Assert.Contains("billing.payment_procesed", Assert.Single(body["rejected"]!.AsArray())!["error"]!.GetValue<string>());

        var notKept = await Eventually.Until(() => MetricSum(silo, "keystone_dead_letters_not_kept_total"), n => n > 0, TimeSpan.FromSeconds(20), "the refusal counted as not kept");
        Assert.Equal(1, notKept);
    }

    private static async Task<long> MetricSum(TestSilo silo, string name) =>
        (long)PrometheusText.Samples(await silo.Http.GetStringAsync("/metrics"), name).Sum(s => s.Value);

    [Fact]
    public async Task Refused_events_are_kept_listed_replayed_once_after_a_fix_and_purged_after_retention()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Routing:RefreshInterval"] = "00:00:00.200";
        await using var silo = await TestSilo.StartAsync(settings);
        var http = silo.Http;

        var good = TestEvents.Node(TestEvents.Play("dlq-u1", "dlq-v1"));
        var future = TestEvents.Node(TestEvents.Play("dlq-u2", "dlq-v1"));
        future["version"] = "1.2";   // not known yet
        var typo = TestEvents.Node(TestEvents.Payment("dlq-u3", "us-east-1"));
        typo["event_type"] = "billing.payment_procesed";
        var response = await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(new JsonArray(good, future, typo).ToJsonString())));
        Assert.Equal(2, response["rejected"]!.AsArray().Count);

        // Both refused events are kept, as they arrived, with the reason.
        var all = (await Json(await http.GetAsync("/v1/dead-letters?stage=ingest")))["items"]!.AsArray();
        Assert.Equal(2, all.Count);
        var kept = all.Single(l => l!["event_type"]!.GetValue<string>() == "video.play.started")!;
        Assert.Contains("version", kept["error"]!.GetValue<string>());
        Assert.Equal(future["event_id"]!.GetValue<string>(), JsonNode.Parse(kept["event"]!.GetValue<string>())!["event_id"]!.GetValue<string>());
        var id = kept["id"]!.GetValue<string>();
        Assert.StartsWith("ingest.", id);
        Assert.Single((await Json(await http.GetAsync("/v1/dead-letters?type=billing.payment_procesed")))["items"]!.AsArray());
        var first = await Json(await http.GetAsync("/v1/dead-letters?limit=1"));
        Assert.Single(first["items"]!.AsArray());
        var second = await Json(await http.GetAsync($"/v1/dead-letters?limit=1&cursor={Uri.EscapeDataString(first["cursor"]!.GetValue<string>())}"));
        Assert.NotEqual(first["items"]![0]!["id"]!.GetValue<string>(), second["items"]![0]!["id"]!.GetValue<string>());
        Assert.Equal(id, (await Json(await http.GetAsync($"/v1/dead-letters/{id}")))["id"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/v1/dead-letters/..%2Fsecret")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/v1/dead-letters/ingest.20200101T000000000-00000000")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/v1/dead-letters?limit=0")).StatusCode);

        // Replayed before the fix: refused again, and kept (attempts 2), not stored twice.
        var again = await http.PostAsync($"/v1/dead-letters/{id}/replay", null);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, again.StatusCode);
        Assert.Equal(2, (await Json(await http.GetAsync($"/v1/dead-letters/{id}")))["attempts"]!.GetValue<int>());
        Assert.Equal(2, (await Json(await http.GetAsync("/v1/dead-letters")))["items"]!.AsArray().Count);

        // The fix: version 1.2 of the schema. Then the replay goes through, once.
        var schema = JsonNode.Parse(await File.ReadAllTextAsync(RepoFiles.PathOf("grain-interfaces/schemas/video.play.started/1.1.json")))!;
        var added = await http.PostAsync("/v1/schemas/video.play.started/versions",
            new StringContent(new JsonObject { ["version"] = "1.2", ["schema"] = schema }.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        var archived = await silo.DeliveredAsync("archive-all-events");
        await Eventually.Until(async () => (await http.PostAsync($"/v1/dead-letters/{id}/replay", null)).StatusCode, s => s == HttpStatusCode.OK, TimeSpan.FromSeconds(15), "the replay to pass");
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n == archived + 1, TimeSpan.FromSeconds(15), "the replayed event archived");
        Assert.Equal("already_replayed", (await Json(await http.PostAsync($"/v1/dead-letters/{id}/replay", null)))["outcome"]!.GetValue<string>());
        var bulk = await Json(await http.PostAsync("/v1/dead-letters/replay?stage=ingest", null));
        Assert.Equal((0, 1, 1), (bulk["replayed"]!.GetValue<int>(), bulk["already_replayed"]!.GetValue<int>(), bulk["rejected_again"]!.GetValue<int>()));
        var sentinels = (await Drain.SentinelsAsync(silo)).Count;
        Assert.Equal(archived + 1 + sentinels, await silo.DeliveredAsync("archive-all-events"));

        // Retention: letters older than the cutoff go, newer ones stay.
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-dead");
        var store = new DeadLetterStore(container);
        var old = DateTimeOffset.UtcNow.AddDays(-30);
        await store.AddAsync([new DeadLetter(DeadLetterStore.NewId("ingest", old), "ingest", "x.y", null, "old", 1, old, "{}", null)]);
        Assert.Equal(1, await store.PurgeAsync(DateTimeOffset.UtcNow.AddDays(-7)));
        Assert.Equal(2, (await store.ListAsync(null, null, 100, null)).Items.Count);
    }

    [Fact]
    public async Task A_failure_behind_an_endpoint_answers_500_naming_its_exception_outside_production()
    {
        await using var silo = await TestSilo.StartAsync(TestSilo.DefaultSettings(azurite),
            services => services.AddSingleton<IIncomingGrainCallFilter>(new FailingListFilter()));

        var response = await silo.Http.GetAsync("/v1/dead-letters?stage=activity");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("System.InvalidOperationException: listing failed (fault injection)", problem["exception"]!.GetValue<string>());
    }

    private sealed class FailingListFilter : IIncomingGrainCallFilter
    {
        public Task Invoke(IIncomingGrainCallContext context) =>
            context.InterfaceMethod?.DeclaringType == typeof(IDeadLetterGrain) && context.InterfaceMethod.Name == nameof(IDeadLetterGrain.List)
                ? throw new InvalidOperationException("listing failed (fault injection)")
                : context.Invoke();
    }
}
