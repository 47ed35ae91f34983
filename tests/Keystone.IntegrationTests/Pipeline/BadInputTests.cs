using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>
/// Over a thousand generated malformed and hostile requests against every write endpoint, with valid traffic sent
/// alongside: each bad request gets a 4xx with a message, none a 5xx, the silo stays healthy, and the valid events
/// are counted exactly.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class BadInputTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private sealed record Attack(string What, HttpMethod Method, string Path, byte[]? Body, string? ContentType, string? Key);

    private static readonly string[] Bodies = BuildBodies();

    private static string[] BuildBodies()
    {
        var valid = TestEvents.Node(TestEvents.Play("bad-u", "bad-v")).ToJsonString();
        var list = new List<string>
        {
            "", " ", "{", "[", "]", "}", "null", "true", "42", "\"text\"", "[1,2,3]", "{\"a\":}", "{\"a\" 1}", "[{]", "{'single':'quotes'}",
            "{\"event_id\":", valid[..(valid.Length / 2)], valid + "garbage", "[" + valid + ",", "[" + valid + "]]", valid.Replace("\"", "'"),
            new string('[', 10_000) + new string(']', 10_000), string.Concat(Enumerable.Repeat("{\"a\":", 5_000)) + "1" + new string('}', 5_000),
            "{\"name\":\"" + new string('x', 300_000) + "\"}", "{\"version\":\"1.9\",\"schema\":" + new string('[', 3_000) + new string(']', 3_000) + "}",
            "{\"name\":\"\\ud800\"}", "{\"name\":\"\\u0000\"}", "{\"name\":\"\u202Eevil\u200B\"}", "\uFEFF{\"name\":\"bom\"}", "{\"from\":\"\\uDFFF\",\"to\":1}",
            "{\"name\":\"ok\",\"budget_micros\":1e400}", "{\"name\":\"ok\",\"budget_micros\":-0.0}", "{\"name\":[],\"frequency_cap\":{\"max_impressions\":1e9,\"window_seconds\":-1}}",
            "{\"from\":\"2026-01-01T00:00:00Z\",\"to\":\"2025-01-01T00:00:00Z\"}", "{\"from\":null,\"to\":null}", "{\"from\":1,\"to\":true}", "{\"events\":{}}", "{\"events\":[1,2],\"rules\":5}",
            "{\"rules\":\"routing-rules: [\",\"events\":[]}", "routing-rules:\n  - name: x\n    condition: { event-type: \"[\" }\n    destinations: [ { topic: t } ]",
            "routing-rules: !!binary AAAA", "a: &a [*a]", "routing-rules:\n" + string.Concat(Enumerable.Repeat("  - name: r\n", 3)),
        };
        var random = new Random(1234);
        // Random mutations of a valid event: a byte flipped, a field dropped, a type changed.
        for (var i = 0; i < 60; i++)
        {
            var chars = valid.ToCharArray();
            chars[random.Next(chars.Length)] = (char)random.Next(0x20, 0x7f);
            list.Add("[" + new string(chars) + "]");
        }
        foreach (var field in new[] { "event_id", "event_type", "timestamp", "version", "source", "payload" })
        {
            var node = JsonNode.Parse(valid)!.AsObject();
            node.Remove(field);
            list.Add("[" + node.ToJsonString() + "]");
            node = JsonNode.Parse(valid)!.AsObject();
            node[field] = new JsonArray(1, 2);
            list.Add("[" + node.ToJsonString() + "]");
        }
        return [.. list];
    }

    private static IEnumerable<Attack> Attacks(string admin)
    {
        var ids = new[] { "..", "../../etc/passwd", "a/b", "%2e%2e%2f", new string('x', 1_000), "a%00b", "%C0%AE%C0%AE", "a b", "x%0Ay" };
        var writes = new (HttpMethod Method, string Path)[]
        {
            (HttpMethod.Post, "/v1/events"), (HttpMethod.Put, "/v1/routing/rules"), (HttpMethod.Post, "/v1/routing/rules/validate"),
            (HttpMethod.Post, "/v1/routing/rules/dry-run"), (HttpMethod.Post, "/v1/schemas/video.play.started/versions"),
            (HttpMethod.Put, "/v1/ads/campaigns/bad-campaign"), (HttpMethod.Post, "/v1/archive/replay"), (HttpMethod.Post, "/v1/dead-letters/replay?limit=0"),
        };
        foreach (var (method, path) in writes)
        {
            foreach (var body in Bodies)
                yield return new Attack($"body {Preview(body)}", method, path, Encoding.UTF8.GetBytes(body), "application/json", admin);
            // Invalid UTF-8, overlong encodings, lone continuation bytes.
            yield return new Attack("invalid utf-8", method, path, [0xC0, 0x80, 0xFF, 0xFE, (byte)'{', 0xED, 0xA0, 0x80], "application/json", admin);
            foreach (var type in new[] { "text/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "image/png" })
                yield return new Attack($"content type {type}", method, path, Encoding.UTF8.GetBytes("a=b"), type, admin);
            yield return new Attack("no key", method, path, Encoding.UTF8.GetBytes("{}"), "application/json", null);
            yield return new Attack("wrong key", method, path, Encoding.UTF8.GetBytes("{}"), "application/json", "wrong-key-0000000000000");
        }
        foreach (var id in ids)
        {
            yield return new Attack($"campaign id {Preview(id)}", HttpMethod.Put, $"/v1/ads/campaigns/{id}", Encoding.UTF8.GetBytes("{\"name\":\"x\"}"), "application/json", admin);
            yield return new Attack($"dead letter id {Preview(id)}", HttpMethod.Post, $"/v1/dead-letters/{id}/replay", null, null, admin);
            yield return new Attack($"schema type {Preview(id)}", HttpMethod.Post, $"/v1/schemas/{id}/versions", Encoding.UTF8.GetBytes("{\"version\":\"1.0\",\"schema\":{}}"), "application/json", admin);
            yield return new Attack($"rollback {Preview(id)}", HttpMethod.Post, $"/v1/routing/rules/versions/{id}/rollback", null, null, admin);
            yield return new Attack($"export file {Preview(id)}", HttpMethod.Get, $"/v1/exports/files/ads-billing/{id}", null, null, admin);
        }
        // Bodies over the request limit.
        var huge = new byte[17 * 1024 * 1024];
        Array.Fill(huge, (byte)' ');
        huge[0] = (byte)'[';
        yield return new Attack("17 MiB body", HttpMethod.Post, "/v1/events", huge, "application/json", admin);
        yield return new Attack("17 MiB rules", HttpMethod.Put, "/v1/routing/rules", huge, "application/yaml", admin);
    }

    private static string Preview(string s) => s.Length <= 40 ? s.Replace("\n", "\\n") : s[..37].Replace("\n", "\\n") + "...";

    [Fact]
    public async Task A_thousand_hostile_requests_get_clear_4xx_answers_and_valid_traffic_is_counted_exactly()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Security:RequestsPerMinute"] = "0";
        settings["Keystone:Taps:RecentEvents"] = "1000";
        await using var silo = await TestSilo.StartAsync(settings);
        using var http = new HttpClient { BaseAddress = silo.Http.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };

        var attacks = Attacks(TestSilo.AdminKey).ToList();
        Assert.True(attacks.Count >= 1_000, $"only {attacks.Count} attacks");
        var failures = new List<string>();
        var good = new List<string>();
        for (var i = 0; i < attacks.Count; i++)
        {
            var a = attacks[i];
            using var request = new HttpRequestMessage(a.Method, a.Path);
            if (a.Body is not null)
            {
                request.Content = new ByteArrayContent(a.Body);
                if (a.ContentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", a.ContentType);
            }
            if (a.Key is not null) request.Headers.Add("X-Api-Key", a.Key);
            var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            // 2xx is acceptable where the input is legal after all (an empty array of events, a valid id); what must
            // never happen is a 5xx, or a 4xx without a message.
            if (status >= 500) failures.Add($"{status} for {a.Method} {a.Path} ({a.What}): {Preview(text)}");
            // Kestrel itself refuses a NUL in the request target (400, no body) before the application sees it.
            else if (status >= 400 && string.IsNullOrWhiteSpace(text) && !a.Path.Contains("%00", StringComparison.Ordinal))
                failures.Add($"{status} without a message for {a.Method} {a.Path} ({a.What})");
            else if (a.Path.Contains("%00", StringComparison.Ordinal) && status != 400) failures.Add($"{status} for a NUL in {a.Path}");

            // Valid traffic alongside: one good event every 25 requests.
            if (i % 25 == 0)
            {
                var play = TestEvents.Play($"good-{i}", "good-v");
                var sent = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([play])));
                Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);
                good.Add(play.EventId.ToString());
            }
        }
        output.WriteLine($"{attacks.Count} hostile requests, {failures.Count} failures, {good.Count} valid events");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(40)));

        Assert.Equal(HttpStatusCode.OK, (await silo.Http.GetAsync("/health/ready")).StatusCode);
        // No hostile rule set got through, so every accepted event reached the archive topic, once.
        Assert.Null(JsonNode.Parse(await silo.Http.GetStringAsync("/v1/routing/rules"))!["version"]);
        // Every valid event reached the archive topic exactly once (some mutated hostile events are valid too, and
        // count once per event id).
        await Eventually.Until(async () => (await Archived(silo)).Intersect(good).Count(), n => n == good.Count, TimeSpan.FromSeconds(20), "the valid events archived");
        await Drain.SentinelsAsync(silo);
        var archived = await Archived(silo);
        Assert.All(good, id => Assert.Single(archived, id));
        Assert.Equal(archived.Count, await silo.DeliveredAsync("archive-all-events"));
        // (A hostile event re-using another's id with a different user_id lands in another partition, whose router has
        // not seen the id: de-duplication is per partition. The README says so.)
    }

    private static async Task<List<string>> Archived(TestSilo silo) =>
        [.. JsonNode.Parse(await silo.Http.GetStringAsync("/v1/topics/archive-all-events/events?limit=1000"))!["events"]!.AsArray()
            .Select(e => e!["event"]!["event_id"]!.GetValue<string>())];
}
