using System.Globalization;
using System.Text.Json.Nodes;
using Keystone.Events;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// The signal a test waits on before asserting that "nothing else changed": one sentinel play per partition,
/// published after everything the test sent. A partition is first in, first out from ingest through its router to
/// every topic and operator, so once each sentinel is on the archive topic and counted in its user's activity,
/// everything its partition received before has been routed, archived and applied too. No fixed sleep.
/// </summary>
public static class Drain
{
    /// <summary>Publishes the sentinels through <paramref name="http"/> (a key with the ingest scope) and waits for them;
    /// returns their event ids (one per partition), for tests that count or list the archive topic.</summary>
    public static async Task<IReadOnlySet<string>> SentinelsAsync(HttpClient http, int partitions, TimeSpan? timeout = null)
    {
        var tag = "drain-" + Guid.NewGuid().ToString("N")[..8];
        var sentinels = Enumerable.Range(0, partitions).Select(p => TestEvents.Play(UserIn(p, partitions, tag), tag + "-video")).ToList();
        await PostAsync(http, sentinels);
        var wait = timeout ?? TimeSpan.FromSeconds(60);
        var ids = sentinels.Select(s => s.EventId.ToString()).ToHashSet();
        await Eventually.Until(async () => (await ArchivedIds(http)).Count(ids.Contains), n => n == ids.Count, wait, $"the {ids.Count} drain sentinels on the archive topic");
        foreach (var sentinel in sentinels)
            await Eventually.Until(() => Events(http, sentinel.UserId!), n => n == 1, wait, $"drain sentinel {sentinel.UserId} counted");
        return ids;
    }

    /// <summary>
    /// The same signal for the ads pipeline, whose sinks the archive sentinels do not reach: one ad impression per
    /// partition, on a campaign of its own, published after everything the test sent. The ads operator of a
    /// partition appends its sinks in delivery order, so once each sentinel is on <c>ads-billing</c> and
    /// <c>ads-analytics</c>, every ad event its partition received before has reached them too. Returns the ids.
    /// </summary>
    public static async Task<IReadOnlySet<string>> AdSentinelsAsync(HttpClient http, int partitions, TimeSpan? timeout = null)
    {
        var tag = "adrain-" + Guid.NewGuid().ToString("N")[..8];
        var script = new Keystone.IntegrationTests.Ads.AdScript(tag + "-campaign");
        var sentinels = Enumerable.Range(0, partitions)
            .Select(p => UserIn(p, partitions, tag))
            .Select(user => script.Session(user, user + "-profile", user + "-device", DateTimeOffset.UtcNow, 1)[0])
            .ToList();
        await PostAsync(http, sentinels);
        var wait = timeout ?? TimeSpan.FromSeconds(60);
        var ids = sentinels.Select(s => s.EventId.ToString()).ToHashSet();
        foreach (var topic in new[] { "ads-billing", "ads-analytics" })
            await Eventually.Until(async () => (await TappedIds(http, topic)).Count(ids.Contains), n => n == ids.Count, wait, $"the {ids.Count} ad drain sentinels on {topic}");
        return ids;
    }

    // As a producer does: a request that got no answer is sent again, the same events (ids) each time. Right after a
    // silo is killed, a call from ingest to a grain that lived there can wait out Orleans' response timeout (30 s, as
    // long as the test client's); the entities and the checks below count each sentinel id once.
    private static async Task PostAsync(HttpClient http, IReadOnlyList<KeystoneEvent> events)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var sent = await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
                Assert.True(sent.IsSuccessStatusCode, $"{(int)sent.StatusCode} {await sent.Content.ReadAsStringAsync()}");
                return;
            }
            catch (TaskCanceledException) when (attempt < 3)
            {
            }
        }
    }

    public static Task<IReadOnlySet<string>> SentinelsAsync(TestSilo silo) =>
        SentinelsAsync(silo.Http, int.Parse(silo.Settings["Keystone:Ingest:Partitions"]!, CultureInfo.InvariantCulture));

    private static string UserIn(int partition, int partitions, string tag)
    {
        for (var i = 0; ; i++)
            if (Partitioning.PartitionOf($"{tag}-u{i}", partitions) == partition) return $"{tag}-u{i}";
    }

    private static Task<HashSet<string>> ArchivedIds(HttpClient http) => TappedIds(http, "archive-all-events");

    private static async Task<HashSet<string>> TappedIds(HttpClient http, string topic)
    {
        var page = JsonNode.Parse(await http.GetStringAsync($"/v1/topics/{topic}/events?limit=1000"))!;
        return page["events"]!.AsArray().Select(e => e!["event"]!["event_id"]!.GetValue<string>()).ToHashSet();
    }

    private static async Task<long> Events(HttpClient http, string user)
    {
        var response = await http.GetAsync($"/v1/users/{user}/activity");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound) return 0;
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>();
    }
}
