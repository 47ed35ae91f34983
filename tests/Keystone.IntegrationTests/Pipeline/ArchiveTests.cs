using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Archive;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>The data-lake archive on Azurite: hour-partitioned gzip JSON lines, manifests, and replay.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ArchiveTests(AzuriteFixture azurite)
{
    private static async Task<JsonNode> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static Task<HttpResponseMessage> Replay(HttpClient http, object body) =>
        http.PostAsync("/v1/archive/replay", new StringContent(System.Text.Json.JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Events_are_archived_by_event_hour_with_manifests_and_replayed_by_range_and_type()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Archive:ManifestInterval"] = "00:00:00.200";
        await using var silo = await TestSilo.StartAsync(settings);
        var http = silo.Http;

        var now = DateTimeOffset.UtcNow;
        var hourA = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(-3);
        var hourB = hourA.AddHours(1);
        var plays = Enumerable.Range(0, 3).Select(i => TestEvents.Play($"arch-u{i}", "arch-v1", at: hourA.AddMinutes(10 + i))).ToList();
        var payments = Enumerable.Range(0, 2).Select(i => TestEvents.Payment($"arch-p{i}", "us-east-1") with { Timestamp = hourB.AddMinutes(5 + i) }).ToList();
        await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([.. plays, .. payments]))));
        // A second delivery into hour A: the same blob gets a second gzip member.
        var late = TestEvents.Play("arch-u0", "arch-v1", at: hourA.AddMinutes(40));
        await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([late]))));

        await Eventually.Until(async () => (await Json(await http.GetAsync("/v1/archive/blobs"))).AsArray().Sum(b => b!["events"]!.GetValue<long>()),
            n => n == 6, TimeSpan.FromSeconds(20), "6 events archived");
        var blobs = (await Json(await http.GetAsync("/v1/archive/blobs"))).AsArray().Select(b => b!["name"]!.GetValue<string>()).ToList();
        // One blob per hour and sealed fronting log segment: p{partition}-s{first position}-{first batch}.
        Assert.All(blobs, name => Assert.Matches(@"^archive/\d{4}/\d{2}/\d{2}/\d{2}/p\d+-s\d{16}-[0-9a-f]{8}\.jsonl\.gz$", name));
        Assert.Contains(blobs, n => n.StartsWith($"archive/{hourA.UtcDateTime:yyyy/MM/dd/HH}/", StringComparison.Ordinal));
        // What the seals wrote, in the stats and on /metrics.
        var seals = (await Json(await http.GetAsync("/v1/stats")))["lake_seals"]!;
        Assert.Equal(6, seals["events"]!.GetValue<long>());
        Assert.True(seals["segments"]!.GetValue<long>() >= 1, seals.ToJsonString());
        Assert.Equal(0, seals["failures"]!.GetValue<long>());
        Assert.Matches(@"keystone_lake_sealed_events_total\{[^}]*\} 6", await http.GetStringAsync("/metrics"));
        Assert.Contains(blobs, n => n.StartsWith($"archive/{hourB.UtcDateTime:yyyy/MM/dd/HH}/", StringComparison.Ordinal));

        // Read straight from the lake: every line of hour A, across blobs and gzip members, is one of its events.
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-lake");
        var store = new ArchiveStore(container);
        var hourAIds = new List<Guid>();
        foreach (var name in await store.ListAsync(hourA, hourA.AddHours(1)))
            await foreach (var line in store.ReadLinesAsync(name)) hourAIds.Add(EventJson.Parse(line).EventId);
        Assert.Equal(plays.Select(p => p.EventId).Append(late.EventId).Order(), hourAIds.Order());
        // Manifests carry the per-blob counts.
        await Eventually.Until(async () =>
        {
            long total = 0;
            await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"archive/{hourA.UtcDateTime:yyyy/MM/dd/HH}/manifest-", CancellationToken.None))
                total += JsonNode.Parse((await container.GetBlobClient(blob.Name).DownloadContentAsync()).Value.Content.ToString())!.AsArray().Sum(b => b!["events"]!.GetValue<long>());
            return total;
        }, n => n == 4, TimeSpan.FromSeconds(10), "hour A's manifests to count 4 events");

        // Replay hour A's plays into a topic: exactly the 4 plays, not the payments.
        var replayed = await Json(await Replay(http, new { from = hourA.ToString("O"), to = hourB.AddHours(1).ToString("O"), type = "video.play.started", to_topic = "arch-replayed" }));
        Assert.Equal((4, 4), (replayed["matched"]!.GetValue<long>(), replayed["published"]!.GetValue<long>()));
        await Eventually.Until(() => silo.DeliveredAsync("arch-replayed"), n => n == 4, TimeSpan.FromSeconds(15), "4 replayed plays on the topic");

        // Replay everything into the pipeline: routers recognise the events, so nothing is archived twice.
        var archived = await silo.DeliveredAsync("archive-all-events");
        var again = await Json(await Replay(http, new { from = hourA.ToString("O"), to = hourB.AddHours(1).ToString("O") }));
        Assert.Equal(6, again["matched"]!.GetValue<long>());
        // Marked so that the lake does not take them twice, and accepted: only the replay may send that mark.
        Assert.Equal(0, again["refused"]!.GetValue<long>());
        var forged = TestEvents.Node(TestEvents.Play("arch-forger", "arch-v1"));
        forged["metadata"] = new JsonObject { ["replayed_from_lake"] = "true" };
        var refusal = (await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(new JsonArray(forged).ToJsonString()))))["rejected"]!.AsArray();
        Assert.Contains("reserved", Assert.Single(refusal)!.ToJsonString());
        var sentinels = (await Drain.SentinelsAsync(silo)).Count;
        Assert.Equal(archived + sentinels, await silo.DeliveredAsync("archive-all-events"));

        // Bad ranges and topics.
        Assert.Equal(HttpStatusCode.BadRequest, (await Replay(http, new { from = hourB.ToString("O"), to = hourA.ToString("O") })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Replay(http, new { from = hourA.AddDays(-30).ToString("O"), to = hourA.ToString("O") })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Replay(http, new { from = hourA.ToString("O"), to = hourB.ToString("O"), to_topic = "Bad Topic" })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Replay(http, new { from = "yesterday", to = hourB.ToString("O") })).StatusCode);
    }

    [Fact]
    public async Task With_the_archive_off_the_topic_is_still_counted_and_nothing_is_written()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Archive:Enabled"] = "false";
        await using var silo = await TestSilo.StartAsync(settings);
        await Json(await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray([TestEvents.Play("off-u1", "off-v1")]))));
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n == 1, TimeSpan.FromSeconds(15), "the archive topic to count the event");
        // Once sentinels published after the event are through, the writers have handled its delivery.
        await Drain.SentinelsAsync(silo);
        Assert.Empty((await Json(await silo.Http.GetAsync("/v1/archive/blobs"))).AsArray());
    }
}
