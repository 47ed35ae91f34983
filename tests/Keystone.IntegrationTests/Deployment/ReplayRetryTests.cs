using System.Net;
using Keystone.Aggregation;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Routing;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// An operator asked to replay from the last checkpoint (a silo left the cluster) whose router refuses the first
/// request, as one does while a dead silo's share of the grain directory is recovered. With the fronting log no
/// delivery asks for the replay again and the next checkpoint is minutes away: the operator must try again by itself
/// (CI once waited 90 s for counts that only the next checkpoint, ten minutes later, would have restored).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ReplayRetryTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_replay_the_router_refused_is_tried_again_without_a_delivery_or_a_checkpoint()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Faults:FailedRouterRewinds"] = "1";
        settings["Keystone:Checkpoints:Interval"] = "00:10:00";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:10:00";
        settings["Keystone:Graph:CheckpointInterval"] = "00:10:00";
        settings["Keystone:Ads:CheckpointInterval"] = "00:10:00";
        await using var silo = await TestSilo.StartAsync(settings);

        var users = Enumerable.Range(0, 12).Select(i => $"retry-u{i}").ToArray();
        var events = users.Select(u => TestEvents.Play(u, "retry-video")).ToList();
        var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await Eventually.Until(async () => (await Operators(silo)).Sum(o => o.Events), n => n == events.Count, TimeSpan.FromSeconds(30), "the plays at the window operators");

        var routers = Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p))).ToArray();
        async Task<long> Replayed() => (await Task.WhenAll(routers.Select(r => r.GetStats()))).Sum(s => s.Replayed);
        var before = await Replayed();
        // What the membership's departure handler does when a silo is declared dead.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).SiloLeft("127.0.0.1:1@1")));

        // Each router refuses the first request; the operators ask again and every accepted event is routed again
        // (nothing is checkpointed, so the whole log is past the covered position).
        await Eventually.Until(Replayed, n => n - before >= events.Count, TimeSpan.FromSeconds(30), "the routers replaying after a refused first request");
        // Routed twice, counted once.
        foreach (var user in users)
        {
            var activity = await silo.Http.GetStringAsync($"/v1/users/{user}/activity");
            Assert.Equal(1, System.Text.Json.Nodes.JsonNode.Parse(activity)!["totals"]!["events"]!.GetValue<long>());
        }
    }

    private static async Task<OperatorStats[]> Operators(TestSilo silo) =>
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));
}
