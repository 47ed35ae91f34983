using System.Net;
using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>A 202 means durable, in the configuration the quick start runs (memory streams).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DurableAcceptTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Events_accepted_right_before_a_kill_are_all_counted_once_after_the_restart()
    {
        // Nothing but ports, names and keys differs from the shipped configuration.
        var settings = TestSilo.DefaultSettings(azurite);
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
            output.WriteLine(await silo.Http.GetStringAsync("/v1/stats"));
        }
        finally
        {
            output.WriteLine(silo.Output.Length > 4000 ? silo.Output[^4000..] : silo.Output);
            await silo.DisposeAsync();
        }
    }

    private static async Task<long> Events(SiloProcess silo, string user)
    {
        var response = await silo.Http.GetAsync($"/v1/users/{user}/activity");
        if (!response.IsSuccessStatusCode) return 0;
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>();
    }
}
