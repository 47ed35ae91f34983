using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Keystone.Ads;
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

            // The committed exports, after two kills and a producer's repeats: every billable event once and every
            // invalid click once, with the verdict the campaign holds (sent only once the campaign was durable).
            var billable = scripts.SelectMany(s => s.Billable).Select(e => e.EventId).Order().ToList();
            var billing = await Eventually.Until(() => Exports.ReadAsync(silo.Http, AdExports.Billing),
                records => Exports.EventIds(records).Distinct().Count() >= billable.Count, TimeSpan.FromSeconds(60), "the billing export");
            Assert.Equal(billable, Exports.EventIds(billing).Order());
            var invalid = scripts.SelectMany(s => s.Invalid).OrderBy(p => p.Key).ToList();
            var alerts = await Eventually.Until(() => Exports.ReadAsync(silo.Http, AdExports.FraudAlerts),
                records => records.Count >= invalid.Count, TimeSpan.FromSeconds(60), "the fraud-alert export");
            Assert.Equal(invalid, alerts.Select(r => KeyValuePair.Create(Guid.Parse(r["event_id"]!.GetValue<string>()), r["reason"]!.GetValue<string>())).OrderBy(p => p.Key));
            output.WriteLine(await silo.Http.GetStringAsync("/v1/ads/operators"));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }
    }

    /// <summary>
    /// With the default streams and the fronting log: an ads checkpoint has written its campaign and is killed before
    /// it sends the billing and fraud records (export writes are stalled). The restarted silo replays the fronting log:
    /// the campaign recalls its verdicts for the events its durable state holds and decides the rest, and every record
    /// is sent, once.
    /// </summary>
    [Fact]
    public async Task A_kill_between_the_campaign_writes_and_the_export_still_sends_every_record_once()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        var stalled = new Dictionary<string, string?>(settings) { ["Keystone:Faults:StallExportWrites"] = "true" };
        var container = new Azure.Storage.Blobs.BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);
        var httpPort = TestSilo.FreePort();

        var campaign = "adexport" + Guid.NewGuid().ToString("N")[..8];
        var script = new AdScript(campaign);
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
        var events = new List<KeystoneEvent>();
        for (var i = 0; i < 30; i++)
        {
            var user = $"{campaign}-u{i}";
            var follow = new List<(string, double)> { ("q", 3) };
            if (i % 3 == 0) follow.Add(("click", 2));
            else if (i % 4 == 0) follow.Add(("click", 0.1));
            events.AddRange(script.Session(user, $"{user}-p", $"{user}-dev", t0.AddSeconds(i * 2), 1_000 + i, [.. follow]));
            if (i % 10 == 0) events.Add(script.GhostClick(user, $"{user}-p", $"{user}-dev", t0.AddSeconds(i * 2 + 1)));
        }

        var silo = await SiloProcess.StartAsync(httpPort, stalled);
        try
        {
            foreach (var request in events.Chunk(25)) await silo.PostWithRetryAsync(request);
            // The campaign's state is durable with some of the events (those before the first checkpoint): that
            // checkpoint got as far as the export, which stalls, and no later one starts.
            await Eventually.Until(() => DurableImpressions(container, campaign), n => n > 0, TimeSpan.FromSeconds(60), $"{campaign}'s state durable");
            Assert.Empty(await Exports.ReadAsync(silo.Http, AdExports.Billing));
            silo.Kill();
            await silo.DisposeAsync();

            silo = await SiloProcess.StartAsync(httpPort, settings);
            var billable = script.Billable.Select(e => e.EventId).Order().ToList();
            var billing = await Eventually.Until(() => Exports.ReadAsync(silo.Http, AdExports.Billing),
                records => Exports.EventIds(records).Distinct().Count() >= billable.Count, TimeSpan.FromSeconds(90), "the billing export");
            Assert.Equal(billable, Exports.EventIds(billing).Order());
            var alerts = await Eventually.Until(() => Exports.ReadAsync(silo.Http, AdExports.FraudAlerts),
                records => records.Count >= script.Invalid.Count, TimeSpan.FromSeconds(60), "the fraud-alert export");
            Assert.Equal(script.Invalid.OrderBy(p => p.Key), alerts.Select(r => KeyValuePair.Create(Guid.Parse(r["event_id"]!.GetValue<string>()), r["reason"]!.GetValue<string>())).OrderBy(p => p.Key));
            // And the campaign counted each event once.
            var totals = await Totals(silo, campaign);
            Assert.Equal((script.Impressions, script.ValidClicks, (long)script.Invalid.Count, script.SpendMicros), (totals.Impressions, totals.Clicks, totals.Invalid, totals.Spend));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }

        static async Task<long> DurableImpressions(Azure.Storage.Blobs.BlobContainerClient blobs, string campaign)
        {
            if (!await blobs.ExistsAsync()) return 0;
            var states = await Keystone.Storage.SnapshotStore.ReadAllAsync(blobs);
            return states.Where(kv => kv.Key.StartsWith("campaign|", StringComparison.Ordinal) && kv.Key.EndsWith("/" + campaign, StringComparison.Ordinal))
                .Select(kv => JsonNode.Parse(kv.Value)?["totals"]?["impressions"]?.GetValue<long>() ?? 0)
                .DefaultIfEmpty(0).Max();
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
