using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Routing;

/// <summary>Live routing rules on a real silo: validated updates, versions, rollback, dry-run, and a restart.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class LiveRulesTests(AzuriteFixture azurite)
{
    private static readonly string FileRules = File.ReadAllText(RepoFiles.PathOf("silo/routing-rules.yaml"));

    private const string LoginRule = """

          - name: "live-logins"
            condition: { event-type: "user.login" }
            destinations:
              - { topic: "live-logins", priority: HIGH, transform: [ { project: [ user_id, device_id ] } ] }
        """;

    private static Task<HttpResponseMessage> Put(HttpClient http, string rules) =>
        http.PutAsync("/v1/routing/rules", new StringContent(rules, Encoding.UTF8, "application/yaml"));

    private static async Task<JsonNode> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static KeystoneEvent Login(string user) =>
        new(Guid.NewGuid(), "user.login", DateTimeOffset.UtcNow, "1.0", new EventSource("auth-service", "smart_tv", "us-east-1"),
            Payload.Create(("user_id", user), ("device_id", user + "-tv"), ("method", "password")), EventMetadata.Empty);

    private static async Task RoutersOn(TestSilo silo, string hash) =>
        await Eventually.Until(async () => (await Json(await silo.Http.GetAsync("/v1/stats")))["routers"]!.AsArray().All(r => r!["rules_hash"]!.GetValue<string>() == hash),
            all => all, TimeSpan.FromSeconds(15), $"every router on rules {hash}");

    [Fact]
    public async Task Rules_are_validated_versioned_applied_without_restart_rolled_back_dry_run_and_kept_across_a_restart()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Routing:RefreshInterval"] = "00:00:00.200";
        string rolledBackHash;
        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var http = silo.Http;
            Assert.Null((await Json(await http.GetAsync("/v1/routing/rules")))["version"]);

            // Refused as a whole, with the rule and field named; nothing changes.
            var duplicate = await Put(http, FileRules + LoginRule + LoginRule);
            Assert.Equal(HttpStatusCode.BadRequest, duplicate.StatusCode);
            var problem = JsonNode.Parse(await duplicate.Content.ReadAsStringAsync())!;
            Assert.Contains("duplicate rule name 'live-logins'", problem["detail"]!.GetValue<string>());
            Assert.Equal(("live-logins", "name"), (problem["rule"]!.GetValue<string>(), problem["field"]!.GetValue<string>()));
            var badTransform = await Put(http, FileRules + LoginRule.Replace("{ project: [ user_id, device_id ] }", "shout"));
            Assert.Equal(HttpStatusCode.BadRequest, badTransform.StatusCode);
            Assert.Equal("live-logins", JsonNode.Parse(await badTransform.Content.ReadAsStringAsync())!["rule"]!.GetValue<string>());
            // A set that would leave operators without input is refused, naming topic and operator (allow_idle=true overrides).
            var idle = await Put(http, "routing-rules:" + LoginRule);
            Assert.Equal(HttpStatusCode.BadRequest, idle.StatusCode);
            var idleProblem = JsonNode.Parse(await idle.Content.ReadAsStringAsync())!;
            Assert.Contains("no enabled rule routes to topic 'activity-aggregation', the input of the activity window operator", idleProblem["detail"]!.GetValue<string>());
            Assert.Equal(4, idleProblem["warnings"]!.AsArray().Count);
            var badFlag = await http.PutAsync("/v1/routing/rules?allow_idle=yes", new StringContent(FileRules, Encoding.UTF8, "application/yaml"));
            Assert.Contains("'allow_idle' must be true or false", await badFlag.Content.ReadAsStringAsync());
            Assert.Empty((await Json(await http.GetAsync("/v1/routing/rules/versions"))).AsArray());

            // Applied: every router switches without a restart, and logins now reach the new topic, projected.
            var v1 = await Json(await Put(http, FileRules + LoginRule));
            Assert.Equal(1, v1["version"]!.GetValue<int>());
            await RoutersOn(silo, v1["hash"]!.GetValue<string>());
            await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([Login("live-u1")]))));
            await Eventually.Until(() => silo.DeliveredAsync("live-logins"), n => n == 1, TimeSpan.FromSeconds(15), "a login on live-logins");
            var delivered = (await Json(await http.GetAsync("/v1/topics/live-logins/events")))["events"]![0]!["event"]!["payload"]!.AsObject();
            Assert.Equal(["device_id", "user_id"], delivered.Select(p => p.Key).Order());

            // Back to the file's rules (version 2), then roll back to version 1 (as version 3).
            var v2 = await Json(await Put(http, FileRules));
            await RoutersOn(silo, v2["hash"]!.GetValue<string>());
            var v3 = await Json(await http.PostAsync("/v1/routing/rules/versions/1/rollback", null));
            Assert.Equal((3, "rollback to version 1", v1["hash"]!.GetValue<string>()), (v3["version"]!.GetValue<int>(), v3["origin"]!.GetValue<string>(), v3["hash"]!.GetValue<string>()));
            await RoutersOn(silo, v1["hash"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/v1/routing/rules/versions/99/rollback", null)).StatusCode);
            Assert.Equal([1, 2, 3], (await Json(await http.GetAsync("/v1/routing/rules/versions"))).AsArray().Select(v => v!["version"]!.GetValue<int>()));
            rolledBackHash = v1["hash"]!.GetValue<string>();

            // Dry-run: per event, the matching rules and each destination's output; a bad event is reported; nothing is published.
            var archived = await silo.DeliveredAsync("archive-all-events");
            var play = TestEvents.Play("dry-u1", "dry-v1", quality: "4K");
            var body = new JsonObject
            {
                ["events"] = new JsonArray(TestEvents.Node(play), TestEvents.Node(Login("dry-u2")), new JsonObject { ["event_type"] = "nope" }),
            };
            var dry = await Json(await http.PostAsync("/v1/routing/rules/dry-run", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")));
            var results = dry["results"]!.AsArray();
            Assert.Equal(rolledBackHash, dry["rules_hash"]!.GetValue<string>());
            Assert.Contains("4k-quality-sample", results[0]!["matched_rules"]!.AsArray().Select(r => r!.GetValue<string>()));
            var sample = results[0]!["destinations"]!.AsArray().Single(d => d!["topic"]!.GetValue<string>() == "playback-4k-starts")!;
            Assert.Equal(["device_id", "quality", "user_id", "video_id"], sample["output"]!["payload"]!.AsObject().Select(p => p.Key).Order());
            Assert.Contains("live-logins", results[1]!["destinations"]!.AsArray().Select(d => d!["topic"]!.GetValue<string>()));
            Assert.NotNull(results[2]!["error"]);
            // A rule set given in the request is used instead, and a bad one is refused.
            var custom = new JsonObject { ["rules"] = "routing-rules:\n  - name: only\n    condition: \"*\"\n    destinations: [ { topic: everything } ]\n", ["events"] = new JsonArray(TestEvents.Node(play)) };
            var customResult = await Json(await http.PostAsync("/v1/routing/rules/dry-run", new StringContent(custom.ToJsonString(), Encoding.UTF8, "application/json")));
            Assert.Equal("everything", customResult["results"]![0]!["destinations"]![0]!["topic"]!.GetValue<string>());
            custom["rules"] = "routing-rules: []";
            Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/v1/routing/rules/dry-run", new StringContent(custom.ToJsonString(), Encoding.UTF8, "application/json"))).StatusCode);
            var sentinels = (await Drain.SentinelsAsync(silo)).Count;
            Assert.Equal(archived + sentinels, await silo.DeliveredAsync("archive-all-events"));
        }

        // A restart keeps the live rules in force (version 3), not the file.
        await using (var again = await TestSilo.StartAsync(settings))
        {
            Assert.Equal(3, (await Json(await again.Http.GetAsync("/v1/routing/rules")))["version"]!.GetValue<int>());
            await RoutersOn(again, rolledBackHash);
        }
    }
}
