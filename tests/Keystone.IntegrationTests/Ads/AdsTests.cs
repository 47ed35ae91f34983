using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.Ads;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Ads;

/// <summary>Exact ad counts, spend, fraud flags, caps and sinks, through REST, on a real silo and Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AdsTests(AzuriteFixture azurite)
{
    private static async Task<JsonNode> Get(HttpClient http, string path)
    {
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static async Task Post(HttpClient http, IEnumerable<KeystoneEvent> events)
    {
        var response = await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Empty(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["rejected"]!.AsArray());
    }

    private static Task<HttpResponseMessage> Put(HttpClient http, string campaign, string json) =>
        http.PutAsync($"/v1/ads/campaigns/{campaign}", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task A_scripted_stream_with_duplicates_and_fraud_gives_exact_counts_spend_flags_caps_and_sinks()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Ads:Fraud:MaxClicksPerMinute"] = "2";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Taps:RecentEvents"] = "1000";
        await using var silo = await TestSilo.StartAsync(settings);
        var http = silo.Http;
        const string campaign = "ads-it-winter";

        // Settings: validated, then applied.
        var bad = await Put(http, campaign, """{ "name": "Winter", "budget_micros": -5 }""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("budget_micros: must not be negative", await bad.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, (await Put(http, campaign, """{ "name": "Winter", "frequency_cap": { "max_impressions": 2 } }""")).StatusCode);
        var put = await Put(http, campaign, """{ "name": "Winter", "budget_micros": 10000, "frequency_cap": { "max_impressions": 2, "window_seconds": 3600 } }""");
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);

        var t = DateTimeOffset.UtcNow.AddMinutes(-5);
        var script = new AdScript(campaign);
        var requests = new List<KeystoneEvent>();
        requests.AddRange(script.Session("ads-u1", "ads-pA", "tv-1", t, 1_000, ("q", 4), ("complete", 15)));
        requests.AddRange(script.Session("ads-u1", "ads-pA", "tv-1", t.AddSeconds(20), 1_000, ("skip", 5)));
        requests.AddRange(script.Session("ads-u2", "ads-pB", "tv-2", t.AddSeconds(1), 1_000, ("click", 2)));
        requests.AddRange(script.Session("ads-u3", "ads-pC", "tv-3", t.AddSeconds(2), 1_000, ("click", 0.1)));
        requests.Add(script.GhostClick("ads-u4", "ads-pD", "tv-4", t.AddSeconds(3)));
        // One device clicking on three profiles' ads within a minute: with K = 2 the third click is flood.
        var bot = new[] { "ads-pE", "ads-pF", "ads-pG" }.Select((p, i) => script.Session("ads-u5", p, "bot-1", t.AddSeconds(30 + i * 5), 1_000, ("click", 2))).ToList();
        script.ExpectFlood(bot[2][1]);
        foreach (var s in bot) requests.AddRange(s);

        await Post(http, requests);
        // The producer sends it all again (a retry), and some events a third time, in another order.
        await Post(http, requests);
        await Post(http, requests.Take(5).Reverse());

        await Eventually.Until(async () => (await Get(http, $"/v1/ads/campaigns/{campaign}"))["totals"]!["impressions"]!.GetValue<long>(),
            n => n == script.Impressions, TimeSpan.FromSeconds(20), "impressions counted");
        await Eventually.Until(async () => (await Get(http, "/v1/ads/operators")).AsArray().Sum(o => o!["events"]!.GetValue<long>()),
            n => n == script.Events.Count, TimeSpan.FromSeconds(20), "every event applied");

        var view = await Get(http, $"/v1/ads/campaigns/{campaign}");
        var totals = view["totals"]!;
        Assert.Equal(7, script.Impressions);
        Assert.Equal((script.Impressions, script.ValidClicks, (long)script.Invalid.Count, script.SpendMicros),
            (totals["impressions"]!.GetValue<long>(), totals["clicks"]!.GetValue<long>(), totals["invalid_clicks"]!.GetValue<long>(), totals["spend_micros"]!.GetValue<long>()));
        Assert.Equal((script.Completes, script.Skips, script.Quartiles, script.Quartiles),
            (totals["completes"]!.GetValue<long>(), totals["skips"]!.GetValue<long>(), totals["first_quartiles"]!.GetValue<long>(), totals["midpoints"]!.GetValue<long>()));
        var invalid = view["invalid_traffic"]!;
        Assert.Equal((1L, 1L, 1L, 0L), (invalid["no-impression"]!.GetValue<long>(), invalid["too-fast"]!.GetValue<long>(), invalid["click-flood"]!.GetValue<long>(), invalid["ctr-burst"]!.GetValue<long>()));
        Assert.Equal(3.0 / 7, view["rates"]!["ctr"]!.GetValue<double>(), 9);
        Assert.Equal(1.0 / 7, view["rates"]!["completion_rate"]!.GetValue<double>(), 9);
        Assert.Equal(1, view["sessions"]!["missing_impression"]!.GetValue<long>());
        Assert.Equal(3_000, view["budget"]!["remaining_micros"]!.GetValue<long>());

        // Frequency cap: profile A has had 2 impressions this hour (cap 2); profile B one.
        var a = await Get(http, $"/v1/ads/eligibility?campaign={campaign}&profile=ads-pA");
        Assert.False(a["eligible"]!.GetValue<bool>());
        Assert.Equal(2, a["impressions_in_window"]!.GetValue<int>());
        Assert.True((await Get(http, $"/v1/ads/eligibility?campaign={campaign}&profile=ads-pB"))["eligible"]!.GetValue<bool>());

        // Three more impressions spend the budget: nobody is eligible any more.
        var more = Enumerable.Range(0, 3).SelectMany(i => script.Session("ads-u6", "ads-pH", "tv-6", t.AddMinutes(2).AddSeconds(i), 1_000)).ToList();
        await Post(http, more);
        await Eventually.Until(async () => (await Get(http, $"/v1/ads/eligibility?campaign={campaign}&profile=ads-pB"))["eligible"]!.GetValue<bool>(),
            eligible => !eligible, TimeSpan.FromSeconds(20), "budget exhaustion");
        var budget = (await Get(http, $"/v1/ads/campaigns/{campaign}"))["budget"]!;
        Assert.Equal((10_000L, 0L, true), (budget["spent_micros"]!.GetValue<long>(), budget["remaining_micros"]!.GetValue<long>(), budget["exhausted"]!.GetValue<bool>()));

        // Sinks: billing holds exactly the billable events, once each; fraud alerts the invalid clicks with their reason.
        await Eventually.Until(() => silo.DeliveredAsync("ads-billing"), n => n >= script.Billable.Count, TimeSpan.FromSeconds(20), "billing deliveries");
        await Eventually.Until(() => silo.DeliveredAsync("ads-analytics"), n => n >= script.Events.Count, TimeSpan.FromSeconds(20), "analytics deliveries");
        // Nothing more arrives (a repeat billed twice would): sentinels behind the script, per partition, are through.
        var sentinels = await Drain.AdSentinelsAsync(http, int.Parse(silo.Settings["Keystone:Ingest:Partitions"]!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(script.Billable.Count + sentinels.Count, await silo.DeliveredAsync("ads-billing"));
        Assert.Equal(script.Events.Count + sentinels.Count, await silo.DeliveredAsync("ads-analytics"));
        var billed = (await Get(http, "/v1/topics/ads-billing/events?limit=1000"))["events"]!.AsArray().Select(e => e!["event"]!["event_id"]!.GetValue<string>())
            .Where(id => !sentinels.Contains(id)).Select(Guid.Parse).ToList();
        Assert.Equal(script.Billable.Select(e => e.EventId).Order(), billed.Order());
        var alerts = (await Get(http, "/v1/topics/ads-fraud-alerts/events?limit=1000"))["events"]!.AsArray().Select(e => e!["event"]!)
            .ToDictionary(e => Guid.Parse(e["event_id"]!.GetValue<string>()), e => e["metadata"]!["invalid_reason"]!.GetValue<string>());
        Assert.Equal(script.Invalid.OrderBy(p => p.Key), alerts.OrderBy(p => p.Key));
        var analyticsFlags = (await Get(http, "/v1/topics/ads-analytics/events?limit=1000"))["events"]!.AsArray()
            .Where(e => !sentinels.Contains(e!["event"]!["event_id"]!.GetValue<string>()))
            .Select(e => e!["event"]!["metadata"]!["ad_valid"]!.GetValue<string>()).GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(script.Invalid.Count, analyticsFlags["false"]);

        // The committed exports: once the campaigns that decided them are durable (checkpoints every second here),
        // every billable event once, with its cost, and every invalid click once, with its reason; the repeats the
        // producer sent are recalled, never sent twice. Waiting for the sentinels means every partition is past the script.
        var exportedBilling = await Eventually.Until(() => Exports.ReadAsync(http, AdExports.Billing),
            records => records.Select(r => r["event_id"]!.GetValue<string>()).Distinct().Count(id => !sentinels.Contains(id)) == script.Billable.Count
                && sentinels.All(id => records.Any(r => r["event_id"]!.GetValue<string>() == id)),
            TimeSpan.FromSeconds(30), "the billing export");
        var scriptBilling = exportedBilling.Where(r => !sentinels.Contains(r["event_id"]!.GetValue<string>())).ToList();
        Assert.Equal(script.Billable.Select(e => e.EventId).Order(), scriptBilling.Select(r => Guid.Parse(r["event_id"]!.GetValue<string>())).Order());
        Assert.Equal(script.SpendMicros, scriptBilling.Sum(r => r["cost_micros"]!.GetValue<long>()));
        Assert.All(exportedBilling, r => Assert.Equal(AdExports.IdOf(AdExports.Billing, Guid.Parse(r["event_id"]!.GetValue<string>())), Guid.Parse(r["id"]!.GetValue<string>())));
        var exportedAlerts = (await Exports.ReadAsync(http, AdExports.FraudAlerts))
            .ToDictionary(r => Guid.Parse(r["event_id"]!.GetValue<string>()), r => r["reason"]!.GetValue<string>());
        Assert.Equal(script.Invalid.OrderBy(p => p.Key), exportedAlerts.OrderBy(p => p.Key));

        // Series: the per-minute windows add up to the totals.
        var minutes = (await Get(http, $"/v1/ads/campaigns/{campaign}/series?window=1m"))["windows"]!.AsArray();
        Assert.Equal(script.Impressions, minutes.Sum(w => w!["counts"]!["impressions"]!.GetValue<long>()));
        Assert.Equal(script.SpendMicros, (await Get(http, $"/v1/ads/campaigns/{campaign}/series?window=1h"))["windows"]!.AsArray().Sum(w => w!["counts"]!["spend_micros"]!.GetValue<long>()));

        // The typed client sees the same campaign.
        var query = await silo.QueryAsync();
        var typed = await query.GetCampaignAsync(campaign);
        Assert.Equal(script.Impressions, typed!.Totals.Impressions);
        Assert.False((await query.CheckEligibilityAsync(campaign, "ads-pB"))!.Eligible);
        await Assert.ThrowsAsync<ArgumentException>(() => query.ConfigureCampaignAsync(campaign, new CampaignSettings("", null, null)));

        // Bad parameters and unknown ids.
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync($"/v1/ads/campaigns/{campaign}/series?window=5m")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync($"/v1/ads/eligibility?campaign={campaign}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/v1/ads/campaigns/never-heard-of-it")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/v1/ads/eligibility?campaign=never-heard-of-it&profile=p")).StatusCode);
        Assert.Null(await query.GetCampaignAsync("never-heard-of-it"));
    }
}
