using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>The status page in a real headless Chromium (Debian's package, installed by the test when missing): it renders the live numbers.</summary>
[Collection(AzuriteCollection.Name)]
public sealed partial class StatusPageTests(AzuriteFixture azurite)
{
    // A headless Chromium that hangs is tried once more, with a fresh profile: one did, once in stop 57, on a screenshot
    // of the page whose DOM it had just dumped. A page that never renders fails both attempts.
    private static async Task<(string Stdout, string Stderr)> Chromium(string userData, params string[] args)
    {
        try
        {
            return await ChromiumOnce(userData, args);
        }
        catch (TimeoutException)
        {
            return await ChromiumOnce(userData + "-again", args);
        }
    }

    private static async Task<(string Stdout, string Stderr)> ChromiumOnce(string userData, string[] args)
    {
        var psi = new ProcessStartInfo(await ChromiumInstaller.EnsureAsync()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", $"--user-data-dir={userData}", "--virtual-time-budget=10000" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("chromium did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            var said = await stderr;
            throw new TimeoutException($"chromium did not finish within 60 s; its last output: {said[Math.Max(0, said.Length - 2_000)..]}");
        }
        return (await stdout, await stderr);
    }

    [Fact]
    public async Task The_status_page_renders_the_live_numbers_behind_the_admin_key()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        // Windows of 300 ms, so that the charts have several points within the test.
        settings["Keystone:Alerts:EvaluationInterval"] = "00:00:00.300";
        await using var silo = await TestSilo.StartAsync(settings);
        var events = Enumerable.Range(0, 7).Select(i => TestEvents.Play($"status-u{i}", "status-v1")).ToList();
        var bad = TestEvents.Node(TestEvents.Play("status-bad", "status-v1"));
        bad["event_type"] = "video.play.nope";
        var body = new JsonArray([.. events.Select(e => (JsonNode)TestEvents.Node(e)), bad]);
        await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(body.ToJsonString()));
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n == 7, TimeSpan.FromSeconds(15), "7 archived events");
        var routed = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["deliveries"]!.GetValue<long>());

        // Without the admin key the page is refused (and a browser is asked for it).
        using var anonymous = new HttpClient();
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri(new Uri(silo.Host.BaseAddress), "/status"))).StatusCode);

        // The charts' data: the windows since start, one of them with the 7 events, one with a router lag, and a
        // quiet window after them (the events came in one request, so the peak is that window's and stays). The
        // router may deliver before ingest records its request, so the router's window can close before the events'
        // one: wait for the events' window itself, not for any window after the router's.
        static double Rate(JsonNode? point) => point!["events_per_second"]!.GetValue<double>();
        var history = await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/status/history"))!["points"]!.AsArray(),
            p => p.Count >= 3 && p.Any(x => x!["lag_p99_ms"]!.AsObject().ContainsKey("router")) && p.Any(x => Rate(x) > 0) && Rate(p[^1]) == 0,
            TimeSpan.FromSeconds(15), "three windows of history, the events' and a quiet one after");
        // One request, so one window has them all.
        var peak = Rate(Assert.Single(history, p => Rate(p) > 0));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, (await silo.Http.GetAsync("/v1/status/history?minutes=16")).StatusCode);

        // The lake's report on the page: the current hour compacted now (sealed hours are compacted in the background).
        var now = DateTimeOffset.UtcNow;
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var compact = new { from = hour.ToString("O"), to = hour.AddHours(1).ToString("O"), include_open = true };
        await Eventually.Until(async () =>
        {
            (await silo.Http.PostAsync("/v1/lake/compact", TestEvents.JsonContent(System.Text.Json.JsonSerializer.Serialize(compact)))).EnsureSuccessStatusCode();
            var top = JsonNode.Parse(await silo.Http.GetStringAsync($"/v1/analytics/top-titles?from={Uri.EscapeDataString(now.AddHours(-24).ToString("O"))}&to={Uri.EscapeDataString(now.AddMinutes(5).ToString("O"))}"))!;
            return top["rows"]!.AsArray().Where(r => r![0]!.GetValue<string>() == "status-v1").Sum(r => r![1]!.GetValue<long>());
        }, n => n == 7, TimeSpan.FromSeconds(30), "the 7 plays of status-v1 in the compacted lake");

        var url = new UriBuilder(new Uri(new Uri(silo.Host.BaseAddress), "/status")) { UserName = "ops", Password = TestSilo.AdminKey }.Uri.ToString();
        var work = Directory.CreateTempSubdirectory("keystone-chromium-");
        try
        {
            var (dom, errors) = await Chromium(Path.Combine(work.FullName, "profile-1"), "--dump-dom", url);
            Assert.True(dom.Contains("id=\"ingested\"", StringComparison.Ordinal), $"no page rendered: {errors}");
            Assert.Equal("7", Cell(dom, "ingested"));
            Assert.Equal("1", Cell(dom, "rejected"));
            Assert.Equal(routed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), Cell(dom, "routed"));
            Assert.Equal("4", Cell(dom, "partitions"));
            Assert.Matches("data-topic=\"archive-all-events\">7<", dom);
            Assert.Contains("error-rate", dom);
            Assert.Matches("data-title=\"status-v1\">7<", dom);

            // The charts: the throughput line has a point per window (at least those seen above) and is scaled to the
            // peak the API reports; the lag chart has a line per stage, the router's among them.
            var throughput = dom[dom.IndexOf("id=\"chart-throughput\"", StringComparison.Ordinal)..];
            throughput = throughput[..throughput.IndexOf("</svg>", StringComparison.Ordinal)];
            Assert.True(int.Parse(ChartCount().Match(throughput).Groups[1].Value) >= history.Count, throughput);
            Assert.Contains($">{peak.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)} events/s<", throughput);
            var lag = dom[dom.IndexOf("id=\"chart-lag\"", StringComparison.Ordinal)..];
            lag = lag[..lag.IndexOf("</svg>", StringComparison.Ordinal)];
            Assert.Contains("data-series=\"router\"", lag);
            Assert.Matches(@"class=""peak""[^>]*>\d+\.\d ms<", lag);

            // And it draws: a real screenshot of the rendered page, of the requested size and not blank.
            var png = Path.Combine(work.FullName, "status.png");
            await Chromium(Path.Combine(work.FullName, "profile-2"), "--window-size=1200,900", $"--screenshot={png}", url);
            var bytes = await File.ReadAllBytesAsync(png);
            Assert.Equal("\u0089PNG", System.Text.Encoding.Latin1.GetString(bytes, 0, 4));
            Assert.Equal((1200, 900), (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20))));
            Assert.True(bytes.Length > 20_000, $"the screenshot is {bytes.Length} bytes: an empty page compresses to a few KB");
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static string Cell(string dom, string id) =>
        CellPattern().Match(dom[dom.IndexOf($"id=\"{id}\"", StringComparison.Ordinal)..]).Groups[1].Value;

    [GeneratedRegex("data-count=\"(\\d+)\"")]
    private static partial Regex ChartCount();

    [GeneratedRegex("^id=\"[a-z]+\">([^<]*)<")]
    private static partial Regex CellPattern();
}
