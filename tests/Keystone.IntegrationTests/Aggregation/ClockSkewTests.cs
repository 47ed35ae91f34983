using System.Net;
using System.Text.Json.Nodes;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Aggregation;

/// <summary>Issue 12: one producer's clock far ahead must not make other producers' events late.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClockSkewTests(AzuriteFixture azurite)
{
    private const int Partitions = 4;

    private static async Task Post(HttpClient http, IEnumerable<KeystoneEvent> events)
    {
        var response = await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Empty(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["rejected"]!.AsArray());
    }

    private static async Task<JsonNode?> TryGet(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text);
    }

    [Fact]
    public async Task An_event_stamped_50_minutes_ahead_counts_where_it_arrived_and_makes_no_other_users_event_late()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Aggregation:WindowSize"] = "00:01:00";
        settings["Keystone:Archive:ManifestInterval"] = "00:00:00.200";
        await using var silo = await TestSilo.StartAsync(settings);
        var windows = new TumblingWindows(TimeSpan.FromMinutes(1));

        const string skewed = "skew-a";
        var partition = Partitioning.PartitionOf(skewed, Partitions);
        var others = Enumerable.Range(0, 1_000).Select(i => $"skew-u{i}").Where(u => Partitioning.PartitionOf(u, Partitions) == partition).Take(5).ToList();
        var op = silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(partition));

        // User A's clock is 50 minutes fast. Ingest accepts it (up to an hour ahead); it arrives between these two times.
        var sentFrom = DateTimeOffset.UtcNow;
        await Post(silo.Http, [TestEvents.Play(skewed, "skew-video", at: sentFrom.AddMinutes(50))]);
        var sentTo = DateTimeOffset.UtcNow;
        await Eventually.Until(async () => (await op.GetStats()).Events, n => n == 1, TimeSpan.FromSeconds(20), "A's event at its operator");

        // Then everyone else on A's partition, with correct clocks.
        var normal = others.Select(u => TestEvents.Play(u, "skew-video")).ToList();
        await Post(silo.Http, normal);
        var stats = await Eventually.Until(() => op.GetStats(), s => s.Events == 1 + others.Count, TimeSpan.FromSeconds(20), "every event at the operator");
        Assert.Equal((0L, 0L, 1L), (stats.TooLate, stats.LateWithinLateness, stats.ClockSkewed));
        Assert.True(stats.Watermark < DateTimeOffset.UtcNow, $"the watermark {stats.Watermark:O} ran ahead of arrival");

        // Every other user's event is counted in the window of its own time.
        foreach (var e in normal)
        {
            var user = e.UserId!;
            var activity = await Eventually.Until(() => TryGet(silo.Http, $"/v1/users/{user}/activity"), a => a is not null, TimeSpan.FromSeconds(20), $"{user}'s activity");
            var window = Assert.Single(activity!["windows"]!.AsArray())!;
            Assert.Equal(windows.Assign(e.Timestamp).Start, window["window"]!["start"]!.GetValue<DateTimeOffset>());
            Assert.Equal(1, window["plays"]!.GetValue<long>());
        }

        // A's event, as the README says: in the window of its arrival, not 50 minutes on.
        var a = await Eventually.Until(() => TryGet(silo.Http, $"/v1/users/{skewed}/activity"), x => x is not null, TimeSpan.FromSeconds(20), "A's activity");
        var aWindow = Assert.Single(a!["windows"]!.AsArray())!;
        Assert.Contains(aWindow["window"]!["start"]!.GetValue<DateTimeOffset>(), new[] { windows.Assign(sentFrom).Start, windows.Assign(sentTo).Start });
        Assert.Equal(1, aWindow["plays"]!.GetValue<long>());

        // The graph: A's WATCHES edge was last seen when the event arrived.
        var edges = await Eventually.Until(() => TryGet(silo.Http, $"/v1/graph/users/{skewed}/edges?label=WATCHES"), x => x is not null, TimeSpan.FromSeconds(20), "A's graph edge");
        var lastSeen = Assert.Single(edges!["edges"]!.AsArray())!["last_seen"]!.GetValue<DateTimeOffset>();
        Assert.InRange(lastSeen, sentFrom, sentTo);

        // The archive: filed under the hour of arrival, so no hour is written before it has begun.
        var blobs = await Eventually.Until(async () => (await TryGet(silo.Http, "/v1/archive/blobs"))!.AsArray(),
            b => b.Sum(x => x!["events"]!.GetValue<long>()) == 1 + others.Count, TimeSpan.FromSeconds(20), "every event in the archive");
        string[] hours = [ArchiveStore.HourPrefix(sentFrom), ArchiveStore.HourPrefix(DateTimeOffset.UtcNow)];
        Assert.All(blobs, b => Assert.Contains(hours, h => b!["name"]!.GetValue<string>().StartsWith(h, StringComparison.Ordinal)));
    }
}
