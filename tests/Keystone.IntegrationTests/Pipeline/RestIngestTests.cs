using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>POST /v1/events through a real Kestrel port on a real silo: status codes and the exact messages.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RestIngestTests(AzuriteFixture azurite)
{
    private static async Task<(HttpStatusCode Status, JsonNode Body)> Post(TestSilo silo, HttpContent content)
    {
        var response = await silo.Http.PostAsync("/v1/events", content);
        var text = await response.Content.ReadAsStringAsync();
        var body = JsonNode.Parse(text)!;
        // An ingest answer, or a failure that says what it was (outside Production a 500 names its exception).
        Assert.True(body["rejected"] is not null || response.StatusCode >= HttpStatusCode.BadRequest && body["detail"] is not null,
            $"{(int)response.StatusCode}: {text}");
        return (response.StatusCode, body);
    }

    private static JsonArray Rejected(JsonNode body) => body["rejected"]?.AsArray() ?? throw new Xunit.Sdk.XunitException($"no 'rejected' in the answer: {body.ToJsonString()}");

    [Fact]
    public async Task Happy_path_accepts_a_json_array_and_the_events_reach_their_topics()
    {
        var silo = await azurite.SharedSiloAsync();
        var before = await silo.DeliveredAsync("analytics-playback-events");
        var events = Enumerable.Range(0, 25).Select(i => TestEvents.Play($"rest-happy-{i}", "video-1")).ToArray();

        var (status, body) = await Post(silo, TestEvents.JsonContent(TestEvents.JsonArray(events)));

        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(25, body["accepted"]!.GetValue<int>());
        Assert.Equal(0, body["duplicates"]!.GetValue<int>());
        Assert.Empty(Rejected(body));
        await Eventually.Until(() => silo.DeliveredAsync("analytics-playback-events"), n => n == before + 25, TimeSpan.FromSeconds(20), "25 more events on analytics-playback-events");
    }

    [Fact]
    public async Task Ndjson_and_gzip_bodies_are_accepted()
    {
        var silo = await azurite.SharedSiloAsync();
        var events = Enumerable.Range(0, 5).Select(i => TestEvents.Play($"rest-nd-{i}", "video-2")).ToArray();

        var (status, body) = await Post(silo, TestEvents.JsonContent(TestEvents.Ndjson(events), "application/x-ndjson"));
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(5, body["accepted"]!.GetValue<int>());

        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            await gzip.WriteAsync(Encoding.UTF8.GetBytes(TestEvents.JsonArray(events.Select(e => e with { EventId = Guid.NewGuid() }))));
        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Headers.ContentEncoding.Add("gzip");
        (status, body) = await Post(silo, content);
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(5, body["accepted"]!.GetValue<int>());
    }

    [Fact]
    public async Task Malformed_json_is_400_with_the_position()
    {
        var silo = await azurite.SharedSiloAsync();
        var (status, body) = await Post(silo, TestEvents.JsonContent("[{\"event_id\": \"x\",]"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var detail = body["detail"]!.GetValue<string>();
        Assert.StartsWith("malformed JSON:", detail);
        Assert.Contains("line 1", detail);
    }

    [Fact]
    public async Task Empty_body_is_400()
    {
        var silo = await azurite.SharedSiloAsync();
        var (status, body) = await Post(silo, TestEvents.JsonContent(""));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("the body is empty", body["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Wrong_types_are_rejected_per_event_with_index_id_field_and_reason()
    {
        var silo = await azurite.SharedSiloAsync();
        var good = TestEvents.Play("rest-types-ok", "video-3");
        var badPosition = TestEvents.Node(TestEvents.Play("rest-types-1", "video-3"));
        badPosition["payload"]!["position_ms"] = "zero";
        var badTimestamp = TestEvents.Node(TestEvents.Play("rest-types-2", "video-3"));
        badTimestamp["timestamp"] = 1735214400;
        var badSource = TestEvents.Node(TestEvents.Play("rest-types-3", "video-3"));
        badSource["source"] = "playback-service";

        var body = $"[{EventJson.Serialize(good)},{badPosition.ToJsonString()},{badTimestamp.ToJsonString()},{badSource.ToJsonString()}]";
        var (status, result) = await Post(silo, TestEvents.JsonContent(body));

        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(1, result["accepted"]!.GetValue<int>());
        var rejected = Rejected(result);
        Assert.Equal(3, rejected.Count);
        Assert.Equal(1, rejected[0]!["index"]!.GetValue<int>());
        Assert.Equal(badPosition["event_id"]!.GetValue<string>(), rejected[0]!["event_id"]!.GetValue<string>());
        Assert.Equal("payload.position_ms", rejected[0]!["field"]!.GetValue<string>());
        Assert.Equal("payload.position_ms: expected integer, got string", rejected[0]!["error"]!.GetValue<string>());
        Assert.Equal("timestamp", rejected[1]!["field"]!.GetValue<string>());
        Assert.Equal("timestamp: expected an ISO-8601 string, got number", rejected[1]!["error"]!.GetValue<string>());
        Assert.Equal("source: expected an object, got string", rejected[2]!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Missing_fields_name_the_field()
    {
        var silo = await azurite.SharedSiloAsync();
        var noType = TestEvents.Node(TestEvents.Play("rest-missing-1", "v"));
        noType.Remove("event_type");
        var noVideo = TestEvents.Node(TestEvents.Play("rest-missing-2", "v"));
        noVideo["payload"]!.AsObject().Remove("video_id");

        var (status, result) = await Post(silo, TestEvents.JsonContent($"[{noType.ToJsonString()},{noVideo.ToJsonString()}]"));

        Assert.Equal(HttpStatusCode.Accepted, status);
        var rejected = Rejected(result);
        Assert.Equal("event_type: required field is missing", rejected[0]!["error"]!.GetValue<string>());
        Assert.Equal("payload.video_id: is required by video.play.started 1.0", rejected[1]!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Unknown_type_and_unknown_version_are_rejected_with_what_is_known()
    {
        var silo = await azurite.SharedSiloAsync();
        var typo = TestEvents.Node(TestEvents.Play("rest-unknown-1", "v"));
        typo["event_type"] = "video.play.strated";
        var version = TestEvents.Node(TestEvents.Play("rest-unknown-2", "v"));
        version["version"] = "7.0";

        var (_, result) = await Post(silo, TestEvents.JsonContent($"[{typo.ToJsonString()},{version.ToJsonString()}]"));

        var rejected = Rejected(result);
        Assert.Equal("event_type: unknown event type 'video.play.strated' (did you mean 'video.play.started'?)", rejected[0]!["error"]!.GetValue<string>());
        Assert.Equal("version: unknown version '7.0' of 'video.play.started' (known: 1.0, 1.1)", rejected[1]!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_oversized_event_is_rejected_with_its_size_and_an_oversized_request_is_413()
    {
        var silo = await azurite.SharedSiloAsync();
        var small = TestEvents.Play("rest-small", "v");
        var huge = TestEvents.Node(TestEvents.Play("rest-huge", "v"));
        for (var i = 0; i < 40; i++) huge["metadata"]![$"k{i}"] = new string('z', 1000);
        var hugeJson = huge.ToJsonString();

        var (status, result) = await Post(silo, TestEvents.JsonContent($"[{EventJson.Serialize(small)},{hugeJson}]"));

        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal(1, result["accepted"]!.GetValue<int>());
        var rejected = Rejected(result);
        Assert.Single(rejected);
        Assert.Equal(1, rejected[0]!["index"]!.GetValue<int>());
        Assert.Equal("event", rejected[0]!["field"]!.GetValue<string>());
        Assert.Equal($"event: is {Encoding.UTF8.GetByteCount(hugeJson)} bytes as JSON; the limit is 32768 bytes", rejected[0]!["error"]!.GetValue<string>());

        var tooLarge = new ByteArrayContent(new byte[17 * 1024 * 1024]);
        tooLarge.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var response = await silo.Http.PostAsync("/v1/events", tooLarge);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("the body is 17825792 bytes; the limit is 16777216 bytes", problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Metadata_limits_are_enforced()
    {
        var silo = await azurite.SharedSiloAsync();
        var wide = TestEvents.Node(TestEvents.Play("rest-meta", "v"));
        for (var i = 0; i < 33; i++) wide["metadata"]![$"k{i}"] = "v";

        var (_, result) = await Post(silo, TestEvents.JsonContent($"[{wide.ToJsonString()}]"));

        Assert.Equal("metadata: has 34 entries; at most 32 are allowed", Rejected(result)[0]!["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Unsupported_content_type_is_415()
    {
        var silo = await azurite.SharedSiloAsync();
        var response = await silo.Http.PostAsync("/v1/events", new StringContent("hello", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.StartsWith("Content-Type 'text/plain; charset=utf-8' is not supported", problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Repeats_within_a_request_are_counted_as_duplicates()
    {
        var silo = await azurite.SharedSiloAsync();
        var e = TestEvents.Play("rest-dup", "video-9");
        var (_, result) = await Post(silo, TestEvents.JsonContent(TestEvents.JsonArray([e, e, e])));
        Assert.Equal(1, result["accepted"]!.GetValue<int>());
        Assert.Equal(2, result["duplicates"]!.GetValue<int>());
    }

    [Fact]
    public async Task Invalid_rules_yaml_is_400_with_line_rule_and_field()
    {
        var silo = await azurite.SharedSiloAsync();
        const string yaml = """
            routing-rules:
              - name: "ok"
                condition: "*"
                destinations:
                  - { topic: "archive-all-events" }
              - name: "bad"
                condition: { event-type: "video.*" }
                destinations:
                  - { topic: "x", priority: URGENT }
            """;
        var response = await silo.Http.PostAsync("/v1/routing/rules/validate", new StringContent(yaml, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("bad", problem["rule"]!.GetValue<string>());
        Assert.Equal("destinations[0].topic", problem["field"]!.GetValue<string>());
        Assert.Equal(9, problem["line"]!.GetValue<int>());
        Assert.Contains("'x' is not a valid topic name", problem["detail"]!.GetValue<string>());

        var valid = await silo.Http.PostAsync("/v1/routing/rules/validate", new StringContent(yaml.Replace("topic: \"x\", priority: URGENT", "topic: \"video-topic\", priority: HIGH"), Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, valid.StatusCode);
        var ok = JsonNode.Parse(await valid.Content.ReadAsStringAsync())!;
        Assert.Equal(2, ok["rules"]!.GetValue<int>());
        // Valid, but it routes nothing to three operators' input topics (the archive's it does): each is named with its operator.
        var warnings = ok["warnings"]!.AsArray().Select(w => w!.GetValue<string>()).ToList();
        Assert.Equal(3, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("'activity-aggregation', the input of the activity window operator", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("'graph-updates', the input of the real-time graph operator", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Topic_queries_validate_their_parameters()
    {
        var silo = await azurite.SharedSiloAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await silo.Http.GetAsync("/v1/topics/no-such-topic/events")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await silo.Http.GetAsync("/v1/topics/UPPER/events")).StatusCode);
        var badLimit = await silo.Http.GetAsync("/v1/topics/archive-all-events/events?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
        Assert.Contains("'limit' must be an integer from 1 to 1000", await badLimit.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Health_and_openapi_are_served()
    {
        var silo = await azurite.SharedSiloAsync();
        // Readiness may drop for a moment while the shared emulator is busy with other tests (the storage check allows
        // it 3 s, and Kubernetes three failed probes); it must come back.
        var body = await Eventually.Until(async () =>
        {
            using var ready = await silo.Http.GetAsync("/health/ready");
            return (ready.StatusCode, await ready.Content.ReadAsStringAsync());
        }, r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), "/health/ready to answer 200");
        var health = JsonNode.Parse(body.Item2)!;
        Assert.Equal("Healthy", health["checks"]!["storage"]!["status"]!.GetValue<string>());
        var openapi = JsonNode.Parse(await silo.Http.GetStringAsync("/openapi/v1.json"))!;
        Assert.NotNull(openapi["paths"]!["/v1/events"]);
        Assert.NotNull(openapi["paths"]!["/v1/topics/{name}/events"]);
        // The answers are described by the handlers' TypedResults signatures, not by hand-listed metadata.
        var ingest = openapi["paths"]!["/v1/events"]!["post"]!["responses"]!.AsObject();
        Assert.Equal(["202", "400", "413", "415", "503"], ingest.Select(r => r.Key).Order());
        Assert.NotNull(ingest["400"]!["content"]!["application/problem+json"]);
        var activity = openapi["paths"]!["/v1/users/{id}/activity"]!["get"]!["responses"]!.AsObject();
        Assert.Equal(["200", "400", "404"], activity.Select(r => r.Key).Order());
    }
}
