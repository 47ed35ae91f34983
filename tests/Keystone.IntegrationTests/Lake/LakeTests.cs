using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Keystone.Events;
using Keystone.IntegrationTests.Ads;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Lake;

/// <summary>
/// The columnar lake on Azurite, through a real silo: archive → Parquet compaction (raw segments deleted by retention)
/// → SQL and reports, with exact counts against the campaign grain, an idempotent re-run, hostile SQL refused over
/// REST, replay from the Parquet form, and the <c>keystone query</c> CLI as a separate process.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class LakeTests(AzuriteFixture azurite)
{
    private static async Task<JsonNode> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static Task<HttpResponseMessage> Post(HttpClient http, string path, object body) =>
        http.PostAsync(path, new StringContent(System.Text.Json.JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

    private static long Scalar(JsonNode result) => result["rows"]![0]![0]!.GetValue<long>();

    [Fact]
    public async Task Sealed_hours_compact_to_parquet_and_answer_sql_and_reports_exactly_once_with_hostile_sql_refused()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:01";
        settings["Keystone:Archive:ManifestInterval"] = "00:00:00.200";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Lake:CompactionEnabled"] = "false";
        settings["Keystone:Lake:SealAfter"] = "00:00:00";
        // Hours that ended over 30 minutes ago lose their raw segments at compaction: queries and replay then read Parquet only.
        settings["Keystone:Lake:RawRetention"] = "00:30:00";
        settings["Keystone:Lake:QueryTimeout"] = "00:00:02";
        settings["Keystone:Lake:MaxRows"] = "1000";
        var cache = Path.Combine(Path.GetTempPath(), "keystone-lake-test-" + Guid.NewGuid().ToString("N"));
        settings["Keystone:Lake:CacheDirectory"] = cache;
        await using var silo = await TestSilo.StartAsync(settings);
        var http = silo.Http;

        var now = DateTimeOffset.UtcNow;
        var current = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var hourA = current.AddHours(-3);
        var hourB = current.AddHours(-2);
        const string campaign = "lake-it-spring";

        // Plays in two sealed hours: titles per region and device known exactly.
        var plays = new List<KeystoneEvent>();
        for (var i = 0; i < 30; i++) plays.Add(TestEvents.Play($"lake-u{i}", "title-a", region: "sa-east-1", at: hourA.AddMinutes(1 + i)));
        for (var i = 0; i < 20; i++) plays.Add(TestEvents.Play($"lake-u{i}", "title-b", region: "sa-east-1", at: hourA.AddMinutes(2 + i)));
        for (var i = 0; i < 10; i++) plays.Add(TestEvents.Play($"lake-u{i}", "title-b", region: "us-east-1", at: hourB.AddMinutes(3 + i)));
        for (var i = 0; i < 5; i++) plays.Add(TestEvents.Play($"lake-u{i}", "title-c", type: "video.play.paused", region: "sa-east-1", at: hourA.AddMinutes(5 + i)));
        // Ad sessions in both hours: impressions with quartiles and (valid) clicks on distinct devices.
        var script = new AdScript(campaign);
        var ads = new List<KeystoneEvent>();
        for (var i = 0; i < 6; i++) ads.AddRange(script.Session($"lake-a{i}", $"lake-ap{i}", $"lake-tv{i}", hourA.AddMinutes(10 + i * 3), 1_500, ("q", 3), ("click", 2)));
        for (var i = 0; i < 4; i++) ads.AddRange(script.Session($"lake-b{i}", $"lake-bp{i}", $"lake-bt{i}", hourB.AddMinutes(20 + i * 3), 2_000, ("complete", 15)));
        // Moves every partition's watermark past both hours, so the activity operators fire the windows of the plays.
        var flush = Keystone.IntegrationTests.Aggregation.PlaybackScript.Flush(4, hourB.AddMinutes(50));
        var all = plays.Concat(ads).Concat(flush).ToList();
        await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(all))));
        // The producer retries part of it: the lake and the grain must still count each event once.
        await Json(await http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(all.Take(25)))));
        // Both answers mean the events are in the fronting log. Sealing it now puts them all in the lake before the first
        // compaction; left to the seal interval, the retry could be sealed after it, and the re-run below would find it new.
        var partitions = int.Parse(settings["Keystone:Ingest:Partitions"]!, System.Globalization.CultureInfo.InvariantCulture);
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => silo.Client.GetGrain<Keystone.Checkpointing.IFrontingPartitionGrain>(p).FlushToLake()));

        await Eventually.Until(async () => (await Json(await http.GetAsync("/v1/archive/blobs"))).AsArray().Sum(b => b!["events"]!.GetValue<long>()),
            // Seconds when healthy; the bound is wide because once in CI the lake's storage did not answer for over 30 s.
            n => n >= all.Count, TimeSpan.FromSeconds(120), $"{all.Count} events archived");
        await Eventually.Until(async () => (await Json(await http.GetAsync($"/v1/ads/campaigns/{campaign}")))["totals"]!["impressions"]!.GetValue<long>(),
            n => n == script.Impressions, TimeSpan.FromSeconds(30), "the campaign grain to count the impressions");

        // Compaction: every (hour, partition) of the two hours; raw segments deleted by retention.
        var range = new { from = hourA.ToString("O"), to = current.ToString("O") };
        var report = await Json(await Post(http, "/v1/lake/compact", range));
        Assert.True(report["compacted"]!.GetValue<int>() >= 2, report.ToJsonString());
        Assert.Equal(all.Count, report["rows"]!.GetValue<long>());
        Assert.True(report["raw_segments_deleted"]!.GetValue<int>() >= report["compacted"]!.GetValue<int>(), report.ToJsonString());
        var lake = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"] + "-lake");
        bool Raw(string n) => n.EndsWith(".jsonl.gz", StringComparison.Ordinal) &&
            (n.StartsWith($"archive/{hourA.UtcDateTime:yyyy/MM/dd/HH}/", StringComparison.Ordinal) || n.StartsWith($"archive/{hourB.UtcDateTime:yyyy/MM/dd/HH}/", StringComparison.Ordinal));
        async Task<List<string>> Names()
        {
            var found = new List<string>();
            await foreach (var blob in lake.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "", CancellationToken.None)) found.Add(blob.Name);
            return found;
        }
        // The producer's retry may be in a later log segment than the rest: one compaction takes both (de-duplicated by
        // event id: the queries below count each event once) and deletes them.
        var names = await Eventually.Until(async () =>
        {
            var found = await Names();
            if (found.Any(Raw)) await Json(await Post(http, "/v1/lake/compact", range));
            return found;
        }, found => !found.Any(Raw), TimeSpan.FromSeconds(60), "no raw segment left in the compacted hours");
        Assert.DoesNotContain(names, Raw);
        Assert.Contains(names, n => n.StartsWith($"parquet/{hourA.UtcDateTime:yyyy/MM/dd/HH}/events-p", StringComparison.Ordinal));
        Assert.Contains(names, n => n.StartsWith($"parquet/{hourA.UtcDateTime:yyyy/MM/dd/HH}/manifest-p", StringComparison.Ordinal));

        // SQL: exact counts by type over both hours, and one hour on its own (the other hour's files are not read).
        var byType = await Json(await Post(http, "/v1/analytics/query", new { sql = "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", range.from, range.to }));
        var counts = byType["rows"]!.AsArray().ToDictionary(r => r![0]!.GetValue<string>(), r => r![1]!.GetValue<long>());
        Assert.Equal(all.GroupBy(e => e.EventType).ToDictionary(g => g.Key, g => (long)g.Count()).OrderBy(kv => kv.Key), counts.OrderBy(kv => kv.Key));
        var oneHour = await Json(await Post(http, "/v1/analytics/query", new { sql = "SELECT count(*) FROM events", from = hourB.ToString("O"), to = hourB.AddHours(1).ToString("O") }));
        Assert.Equal(all.Count(e => e.Timestamp >= hourB), Scalar(oneHour));
        Assert.Equal(1, oneHour["hours"]!.GetValue<int>());
        var distinct = await Json(await Post(http, "/v1/analytics/query", new { sql = "SELECT count(*) - count(DISTINCT event_id) FROM events", range.from, range.to }));
        Assert.Equal(0, Scalar(distinct));

        // Top titles in one region, then one device type.
        var top = await Json(await http.GetAsync($"/v1/analytics/top-titles?from={Uri.EscapeDataString(range.from)}&to={Uri.EscapeDataString(range.to)}&region=sa-east-1&device_type=smart_tv"));
        Assert.Equal(["title-a:30", "title-b:20"], top["rows"]!.AsArray().Select(r => $"{r![0]}:{r[1]}").ToArray());
        var us = await Json(await http.GetAsync($"/v1/analytics/top-titles?from={Uri.EscapeDataString(range.from)}&to={Uri.EscapeDataString(range.to)}&region=us-east-1"));
        Assert.Equal(["title-b:10"], us["rows"]!.AsArray().Select(r => $"{r![0]}:{r[1]}").ToArray());

        // Ads report agrees with the campaign grain's own hourly windows, hour by hour.
        var adsReport = await Json(await http.GetAsync($"/v1/analytics/ads?campaign={campaign}&from={Uri.EscapeDataString(range.from)}&to={Uri.EscapeDataString(range.to)}"));
        var series = await Json(await http.GetAsync($"/v1/ads/campaigns/{campaign}/series?window=1h"));
        var grainHours = series["windows"]!.AsArray()
            .Where(w => DateTimeOffset.Parse(w!["start"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) < current)
            .Select(w => (DateTimeOffset.Parse(w!["start"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture).UtcDateTime.ToString("yyyy-MM-ddTHH:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
                w["counts"]!["impressions"]!.GetValue<long>(), w["counts"]!["clicks"]!.GetValue<long>(), w["counts"]!["spend_micros"]!.GetValue<long>()))
            .Where(w => w.Item2 + w.Item3 > 0).ToList();
        var lakeHours = adsReport["rows"]!.AsArray().Select(r => (r![0]!.GetValue<string>(), r[1]!.GetValue<long>(), r[2]!.GetValue<long>(), r[3]!.GetValue<long>())).ToList();
        Assert.Equal(2, lakeHours.Count);
        Assert.Equal(grainHours, lakeHours);
        Assert.Equal(script.Impressions, lakeHours.Sum(h => h.Item2));
        Assert.Equal(script.SpendMicros, lakeHours.Sum(h => h.Item4));

        // A re-run finds every hour covered: nothing is rewritten and no row is added.
        var again = await Json(await Post(http, "/v1/lake/compact", range));
        Assert.Equal(0, again["compacted"]!.GetValue<int>());
        Assert.Equal(0, again["rows"]!.GetValue<long>());
        var total = await Json(await Post(http, "/v1/analytics/query", new { sql = "SELECT count(*) FROM events", range.from, range.to }));
        Assert.Equal(all.Count, Scalar(total));

        // Hostile SQL: each refused with 400 naming the reason.
        var leak = Path.Combine(Path.GetTempPath(), "lake-leak.csv");
        var evil = Path.Combine(Path.GetTempPath(), "evil.duckdb");
        foreach (var (sql, reason) in new[]
        {
            ($"COPY (SELECT * FROM events) TO '{leak}'", "only a SELECT"),
            ($"ATTACH '{evil}' AS evil", "only a SELECT"),
            ("INSTALL httpfs", "only a SELECT"),
            ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
            ("SELECT * FROM '/etc/passwd'", "reading files is not allowed"),
            ("SELECT 1; DROP VIEW events", "only one statement"),
            ("SELECT * FROM events a, events b", "more than 1000 rows"),
            ("SELECT no_such_column FROM events", "no_such_column"),
            // Last: once stopped, its engine threads may run on for a while, and on a loaded CI machine the query after
            // it once starved past Orleans' 30 s call timeout.
            ("SELECT count(*) FROM events a, events b, events c, events d, events e, range(100000000) f", "ran longer than 2 s"),
        })
        {
            var response = await Post(http, "/v1/analytics/query", new { sql, range.from, range.to });
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{sql}: {(int)response.StatusCode} {text}");
            Assert.Contains(reason, JsonNode.Parse(text)!["detail"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
        }
        Assert.False(File.Exists(leak));
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(http, "/v1/analytics/query", new { sql = "SELECT 1", from = range.to, to = range.from })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync($"/v1/analytics/ads?from={Uri.EscapeDataString(range.from)}&to={Uri.EscapeDataString(range.to)}")).StatusCode);
        // The query endpoint needs the admin scope.
        using (var ingestOnly = new HttpClient { BaseAddress = http.BaseAddress })
        {
            ingestOnly.DefaultRequestHeaders.Add("X-Api-Key", TestSilo.IngestKey);
            Assert.Equal(HttpStatusCode.Forbidden, (await Post(ingestOnly, "/v1/analytics/query", new { sql = "SELECT 1", range.from, range.to })).StatusCode);
        }

        // Replay reads the Parquet form now that the raw segments are gone: exactly the plays of hour A.
        var replayed = await Json(await Post(http, "/v1/archive/replay", new { from = hourA.ToString("O"), to = hourB.ToString("O"), type = "video.play.started", to_topic = "lake-replayed" }));
        Assert.Equal(50, replayed["matched"]!.GetValue<long>());
        await Eventually.Until(() => silo.DeliveredAsync("lake-replayed"), n => n == 50, TimeSpan.FromSeconds(15), "50 replayed plays on the topic");

        // Window results: archived by the hour they were emitted (now), so that hour is compacted while still open.
        var windowRange = new { from = current.ToString("O"), to = current.AddHours(1).ToString("O"), include_open = true };
        const string windowSql = "SELECT coalesce(sum(plays), 0) FROM (SELECT DISTINCT ON (user_id, window_start) plays FROM activity_windows " +
                                 "WHERE user_id LIKE 'lake-u%' ORDER BY user_id, window_start, emitted_at DESC)";
        await Eventually.Until(async () =>
        {
            await Json(await Post(http, "/v1/lake/compact", windowRange));
            return Scalar(await Json(await Post(http, "/v1/analytics/query", new { sql = windowSql, range.from, range.to })));
        }, n => n == 60, TimeSpan.FromSeconds(30), "the 60 plays of lake-u users in compacted window results");

        // keystone query, as a separate process through the Orleans gateway.
        // Verbose, so that a failure says where the time went: once in CI (stop 59) this call got no answer within
        // Orleans' 30 s, and the bare "no answer in time" could not tell whether the client, the gateway or the lake's
        // storage had waited. Not reproduced in repeated runs of this test alone.
        var clock = Stopwatch.StartNew();
        var (code, stdout, stderr) = await KeystoneCli.RunAsync(silo, "query", "SELECT event_type, count(*) AS n FROM events WHERE event_type LIKE 'video.%' GROUP BY 1 ORDER BY 1", "--from", range.from, "--to", range.to, "--verbose");
        Assert.True(code == 0, $"exit {code} after {clock.Elapsed.TotalSeconds:0.0} s: {(stderr.Length > 6000 ? "..." + stderr[^6000..] : stderr)}; " +
                               $"warnings the in-process silo logged meanwhile: {RecentWarnings.Instance.Describe(clock.Elapsed + TimeSpan.FromSeconds(5), max: 60)}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^event_type\s+n$", lines[0]);
        Assert.Matches(@"^video\.play\.paused\s+5$", lines[1]);
        Assert.Matches(@"^video\.play\.started\s+64$", lines[2]);
        Assert.StartsWith("(2 rows, 3 hours", lines[3]);
        var (refusedCode, _, refusedErr) = await KeystoneCli.RunAsync(silo, "query", "SELECT * FROM read_csv('/etc/passwd')", "--from", range.from, "--to", range.to);
        Assert.Equal(1, refusedCode);
        Assert.Contains("query refused: sql: table function 'read_csv' is not allowed", refusedErr);
        Directory.Delete(cache, recursive: true);
    }
}
