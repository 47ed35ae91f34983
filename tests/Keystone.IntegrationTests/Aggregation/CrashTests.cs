using System.Net;
using System.Text.Json.Nodes;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Aggregation;

/// <summary>
/// The heart of the aggregations issue: with a durable stream provider (Azure Queue on Azurite), hard-kill the silo
/// process twice while events are flowing, restart it, let it drain, and demand exact totals — nothing lost, nothing
/// counted twice.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class CrashTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Hard_kills_mid_stream_lose_nothing_and_count_nothing_twice()
    {
        var prefix = "crash" + Guid.NewGuid().ToString("N")[..8];
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "AzureQueue";
        settings["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        settings["Keystone:Streaming:AzureQueue:QueueCount"] = "2";
        // Short enough that messages a dead silo had read come back quickly.
        settings["Keystone:Streaming:AzureQueue:VisibilityTimeout"] = "00:00:05";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:02";
        // Redelivery after a crash reorders messages by seconds; with no lateness allowed those events would rightly be
        // too late for their windows and go to the side output. Totals are what this test is about.
        settings["Keystone:Aggregation:AllowedLateness"] = "01:00:00";
        var httpPort = TestSilo.FreePort();

        // 60 users × 2 sessions on 12 titles: known totals for every user, title and profile.
        var script = new PlaybackScript();
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-30);
        for (var u = 0; u < 60; u++)
            for (var s = 0; s < 2; s++)
                script.Session($"crash-user-{u}", $"crash-user-{u}-p{s}", $"crash-dev-{u}", $"crash-video-{(u + s) % 12}", t0.AddMinutes(s * 3).AddSeconds(u));
        // Each request carries whole sessions (a session's four events stay in order inside one message, even when a
        // crash makes the queue redeliver messages out of order); requests go in session-start order.
        var requests = script.Events.Chunk(4).OrderBy(session => session[0].Timestamp).Chunk(4).Select(r => r.SelectMany(x => x).ToArray()).ToList();

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            var kills = new HashSet<int> { requests.Count / 3, 2 * requests.Count / 3 };
            for (var i = 0; i < requests.Count; i++)
            {
                if (kills.Contains(i))
                {
                    output.WriteLine($"killing the silo after {i} of {requests.Count} requests");
                    silo.Kill();
                    await silo.DisposeAsync();
                    silo = await SiloProcess.StartAsync(httpPort, settings);
                }
                // A producer that retries until the cluster says accepted; a retry of a request that had gone through
                // is exactly the kind of duplicate the pipeline must absorb.
                await silo.PostWithRetryAsync(requests[i]);
            }
            // A producer that re-sends what it already sent (say, after a timeout it could not interpret).
            foreach (var again in requests.Take(3)) await silo.PostWithRetryAsync(again);

            // One more kill while the queues still hold work, then drain.
            silo.Kill();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(httpPort, settings);

            foreach (var (user, expected) in script.Users)
                await Eventually.Until(() => Totals(silo, $"/v1/users/{user}/activity", "totals"), t => t.Events == 4 * expected.Plays && t.WatchMs == expected.WatchMs, TimeSpan.FromSeconds(90), $"{user}'s totals");

            foreach (var (user, expected) in script.Users)
            {
                var t = await Totals(silo, $"/v1/users/{user}/activity", "totals");
                Assert.Equal((expected.Plays, expected.Pauses, expected.Resumes, expected.Stops, expected.WatchMs), (t.Plays, t.Pauses, t.Resumes, t.Stops, t.WatchMs));
            }
            foreach (var (video, expected) in script.Videos)
            {
                var t = await Totals(silo, $"/v1/videos/{video}/stats", "totals");
                Assert.Equal((expected.Plays, expected.WatchMs), (t.Starts, t.WatchMs));
                Assert.Equal(script.Viewers[video].Count, t.Viewers);
            }
            foreach (var (profile, expected) in script.Profiles)
            {
                var t = await Totals(silo, $"/v1/profiles/{profile}", null);
                Assert.Equal((expected.Plays, expected.WatchMs), (t.Plays, t.WatchMs));
            }
            output.WriteLine(await silo.Http.GetStringAsync("/v1/aggregation/operators"));
        }
        finally
        {
            // What Keystone itself warned about (the tail of the log is mostly Orleans' start-up), and what was set aside.
            output.WriteLine("--- Keystone warnings\n" + Deployment.ClusterTestKit.KeystoneWarnings(silo.Output));
            output.WriteLine("dead letters: " + await Deployment.ClusterTestKit.Text(silo, "/v1/dead-letters"));
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }
    }

    private sealed record Counted(long Events, long Plays, long Pauses, long Resumes, long Stops, long WatchMs, long Starts, long Viewers);

    private static async Task<Counted> Totals(SiloProcess silo, string path, string? section)
    {
        var response = await silo.Http.GetAsync(path);
        if (!response.IsSuccessStatusCode) return new Counted(0, 0, 0, 0, 0, 0, 0, 0);
        var node = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var t = section is null ? node : node[section]!;
        long Get(string name) => t[name]?.GetValue<long>() ?? 0;
        return new Counted(Get("events"), Get("plays"), Get("pauses"), Get("resumes"), Get("stops"), Get("watch_ms"), Get("starts"), Get("unique_viewers"));
    }
}
