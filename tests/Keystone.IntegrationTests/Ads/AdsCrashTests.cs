using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Ads;

/// <summary>
/// With a durable stream provider (Azure Queue on Azurite): hard-kill the silo process mid-stream, restart it, and
/// demand that impressions, clicks, invalid clicks and spend equal the script exactly.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AdsCrashTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Hard_kills_mid_stream_leave_counts_and_spend_exact()
    {
        var prefix = "adcrash" + Guid.NewGuid().ToString("N")[..8];
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "AzureQueue";
        settings["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        settings["Keystone:Streaming:AzureQueue:QueueCount"] = "2";
        settings["Keystone:Streaming:AzureQueue:VisibilityTimeout"] = "00:00:05";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:02";
        var httpPort = TestSilo.FreePort();

        // 3 campaigns × 40 showings; every 5th has a valid click, every 7th a too-fast one, every 11th user also
        // sends a click with no impression. Each request holds whole showings, so a session stays in order.
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-20);
        var scripts = Enumerable.Range(0, 3).Select(c => new AdScript($"{prefix}-c{c}")).ToArray();
        var sessions = new List<List<KeystoneEvent>>();
        for (var i = 0; i < 120; i++)
        {
            var script = scripts[i % 3];
            var user = $"{prefix}-u{i}";
            var at = t0.AddSeconds(i);
            var follow = new List<(string, double)> { ("q", 3) };
            if (i % 5 == 0) follow.Add(("click", 2));
            else if (i % 7 == 0) follow.Add(("click", 0.1));
            follow.Add(i % 2 == 0 ? ("complete", 15) : ("skip", 6));
            var session = script.Session(user, $"{user}-p", $"{user}-dev", at, 1_000 + i, [.. follow]);
            if (i % 11 == 0) session.Add(script.GhostClick(user, $"{user}-p", $"{user}-dev", at.AddSeconds(20)));
            sessions.Add(session);
        }
        var requests = sessions.Chunk(4).Select(c => c.SelectMany(s => s).ToArray()).ToList();

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
                await silo.PostWithRetryAsync(requests[i]);
            }
            foreach (var again in requests.Take(3)) await silo.PostWithRetryAsync(again);
            silo.Kill();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(httpPort, settings);

            foreach (var script in scripts)
            {
                var campaign = script.Events[0].Payload.GetString("campaign_id")!;
                await Eventually.Until(() => Totals(silo, campaign), t => t.Impressions == script.Impressions && t.Clicks + t.Invalid == script.ValidClicks + script.Invalid.Count,
                    TimeSpan.FromSeconds(90), $"{campaign}'s counts");
            }
            // Redelivered messages must change nothing. A message is deleted from its queue only once delivered, and
            // the queue's count includes messages made invisible by a read (Azure's and Azurite's both): once both
            // queues are empty, nothing is left to be redelivered.
            var queues = new QueueServiceClient(azurite.ConnectionString);
            await Eventually.Until(async () =>
            {
                long left = 0;
                for (var q = 0; q < 2; q++) left += (await queues.GetQueueClient($"{prefix}-{q}").GetPropertiesAsync()).Value.ApproximateMessagesCount;
                return left;
            }, left => left == 0, TimeSpan.FromSeconds(90), "the stream queues empty, nothing left to redeliver");
            foreach (var script in scripts)
            {
                var campaign = script.Events[0].Payload.GetString("campaign_id")!;
                var t = await Totals(silo, campaign);
                Assert.Equal((script.Impressions, script.ValidClicks, (long)script.Invalid.Count, script.SpendMicros, script.Completes, script.Skips),
                    (t.Impressions, t.Clicks, t.Invalid, t.Spend, t.Completes, t.Skips));
            }
            output.WriteLine(await silo.Http.GetStringAsync("/v1/ads/operators"));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }
    }

    private sealed record Counted(long Impressions, long Clicks, long Invalid, long Spend, long Completes, long Skips);

    private static async Task<Counted> Totals(SiloProcess silo, string campaign)
    {
        try
        {
            var response = await silo.Http.GetAsync($"/v1/ads/campaigns/{campaign}");
            if (!response.IsSuccessStatusCode) return new Counted(0, 0, 0, 0, 0, 0);
            var t = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!;
            long Get(string name) => t[name]!.GetValue<long>();
            return new Counted(Get("impressions"), Get("clicks"), Get("invalid_clicks"), Get("spend_micros"), Get("completes"), Get("skips"));
        }
        catch (HttpRequestException)
        {
            return new Counted(0, 0, 0, 0, 0, 0);
        }
    }
}
