using System.Net;
using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>A 202 means durable, in the configuration the quick start runs (memory streams).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DurableAcceptTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Theory]
    [InlineData("Blob")]
    [InlineData("File")]
    public async Task Events_accepted_right_before_a_kill_are_all_counted_once_after_the_restart(string log)
    {
        // Nothing but ports, names, keys and where the log lives differs from the shipped configuration (the quick
        // start keeps the log in files; without a log directory it goes to blobs).
        var settings = TestSilo.DefaultSettings(azurite);
        var directory = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("fronting-log"));
        if (log == "File") settings["Keystone:Checkpoints:LogDirectory"] = directory;
        var httpPort = TestSilo.FreePort();
        const int users = 50, perUser = 40;
        var now = DateTimeOffset.UtcNow;
        var events = Enumerable.Range(0, users * perUser)
            .Select(i => TestEvents.Play($"durable-u{i % users}", $"durable-v{i % 7}", at: now.AddMilliseconds(i)))
            .ToList();

        var silo = await SiloProcess.StartAsync(httpPort, settings);
        try
        {
            foreach (var request in events.Chunk(100))
            {
                var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }
            // Straight after the last acknowledgement: most of it is still in memory, between streams and grains.
            silo.Kill();
            await silo.DisposeAsync();

            silo = await SiloProcess.StartAsync(httpPort, settings);
            for (var u = 0; u < users; u++)
                await Eventually.Until(() => Events(silo, $"durable-u{u}"), n => n >= perUser, TimeSpan.FromSeconds(90), $"durable-u{u}'s {perUser} events");
            for (var u = 0; u < users; u++)
                Assert.Equal(perUser, await Events(silo, $"durable-u{u}"));
            var stats = await silo.Http.GetStringAsync("/v1/stats");
            output.WriteLine(stats);
            // The log that was written is the one replayed.
            Assert.Equal(log == "File", Directory.Exists(directory) && Directory.EnumerateFiles(directory, "*.log", SearchOption.AllDirectories).Any());
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Checkpoints_complete_once_every_stateful_consumer_has_acknowledged_and_cover_what_was_routed()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:00.500";
        // Operators acknowledge barriers at their own checkpoints (1 min, 5 min and 30 s as shipped).
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        await using var silo = await TestSilo.StartAsync(settings);
        var events = Enumerable.Range(0, 400).Select(i => TestEvents.Play($"cover-u{i % 20}", $"cover-v{i % 5}")).ToList();
        foreach (var request in events.Chunk(50))
            Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(request)))).StatusCode);

        // Every position written is eventually covered: the routers, the window, graph and ad operators and the
        // archive writer all answered a barrier that follows it.
        await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["events"]!.GetValue<long>()),
            n => n >= 400, TimeSpan.FromSeconds(30), "400 events routed");
        var routed = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Sum(r => r!["position"]!.GetValue<long>());
        Assert.True(routed >= 8, $"the routers report {routed} fronting positions for 8 requests");
        var covered = await Eventually.Until(async () => JsonNode.Parse(await silo.Http.GetStringAsync("/v1/checkpoints"))!["covered"]!.AsArray().Sum(c => c!.GetValue<long>()),
            n => n >= routed, TimeSpan.FromSeconds(30), "checkpoints covering every routed position");
        Assert.Equal(routed, covered);

        var status = JsonNode.Parse(await silo.Http.GetStringAsync("/v1/checkpoints"))!;
        Assert.True(status["completed"]!.GetValue<long>() >= 1);
        Assert.Equal(["activity-aggregation", "graph-updates", "ads-campaign", "archive-all-events"], status["consumers"]!.AsArray().Select(c => c!.GetValue<string>()));
    }

    private static async Task<long> Events(SiloProcess silo, string user)
    {
        var response = await silo.Http.GetAsync($"/v1/users/{user}/activity");
        if (!response.IsSuccessStatusCode) return 0;
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>();
    }
}
