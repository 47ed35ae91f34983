using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Routing;

/// <summary>Adding a schema version at run time: compatibility checked, effective without a restart, kept across one.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SchemaEvolutionTests(AzuriteFixture azurite)
{
    private static JsonObject Schema11() =>
        JsonNode.Parse(File.ReadAllText(RepoFiles.PathOf("grain-interfaces/schemas/video.play.started/1.1.json")))!.AsObject();

    private static Task<HttpResponseMessage> Add(HttpClient http, string version, JsonObject schema) =>
        http.PostAsync("/v1/schemas/video.play.started/versions",
            new StringContent(new JsonObject { ["version"] = version, ["schema"] = schema.DeepClone() }.ToJsonString(), Encoding.UTF8, "application/json"));

    private static KeystoneEvent Play12(bool hdr) =>
        new(Guid.NewGuid(), "video.play.started", DateTimeOffset.UtcNow, "1.2", new EventSource("playback-service", "smart_tv", "us-east-1"),
            Payload.Create(("user_id", "schema-u1"), ("profile_id", "schema-p1"), ("video_id", "schema-v1"), ("position_ms", 0), ("quality", "HD"), ("hdr", hdr)),
            EventMetadata.Empty);

    private static async Task<JsonNode> Publish(HttpClient http, KeystoneEvent e) =>
        JsonNode.Parse(await (await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([e])))).Content.ReadAsStringAsync())!;

    [Fact]
    public async Task A_compatible_version_is_added_without_restart_and_incompatible_ones_are_refused_with_the_reason()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Routing:RefreshInterval"] = "00:00:00.200";
        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var http = silo.Http;
            // Before: version 1.2 is unknown.
            Assert.Contains("unknown version", (await Publish(http, Play12(true)))["rejected"]![0]!["error"]!.GetValue<string>());

            // Incompatible: a field removed, a new required field.
            var removed = Schema11();
            removed["properties"]!.AsObject().Remove("genre");
            var refused = await Add(http, "1.2", removed);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("field 'genre' was removed", await refused.Content.ReadAsStringAsync());
            var required = Schema11();
            required["properties"]!.AsObject()["hdr"] = new JsonObject { ["type"] = "boolean" };
            required["required"]!.AsArray().Add("hdr");
            Assert.Contains("new field 'hdr' is required", await (await Add(http, "1.2", required)).Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("/v1/schemas/video.play.started/versions", new StringContent("{\"version\":\"1.2\"}", Encoding.UTF8, "application/json"))).StatusCode);

            // Compatible: one new optional field. Effective on the silo without a restart.
            var compatible = Schema11();
            compatible["properties"]!.AsObject()["hdr"] = new JsonObject { ["type"] = "boolean" };
            Assert.Equal(HttpStatusCode.Created, (await Add(http, "1.2", compatible)).StatusCode);
            Assert.Equal(HttpStatusCode.Conflict, (await Add(http, "1.2", compatible)).StatusCode);
            await Eventually.Until(async () => (await Publish(http, Play12(true)))["accepted"]!.GetValue<int>(), n => n == 1, TimeSpan.FromSeconds(15), "a 1.2 event accepted");
            Assert.Contains("1.2", (await http.GetStringAsync("/v1/schemas/video.play.started")));
            // The new version's own rules apply: hdr must be a boolean.
            var wrong = Play12(true) with { Payload = Payload.Create(("user_id", "u"), ("profile_id", "p"), ("video_id", "v"), ("position_ms", 0), ("quality", "HD"), ("hdr", "yes")) };
            Assert.Contains("payload.hdr", (await Publish(http, wrong))["rejected"]![0]!["error"]!.GetValue<string>());
        }

        await using (var again = await TestSilo.StartAsync(settings))
        {
            await Eventually.Until(async () => (await Publish(again.Http, Play12(false)))["accepted"]!.GetValue<int>(), n => n == 1, TimeSpan.FromSeconds(15), "1.2 still known after a restart");
        }
    }
}
