using System.Diagnostics;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using static Keystone.IntegrationTests.Deployment.ClusterTestKit;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// Two silos and operators that checkpoint only every ten minutes; one silo is killed after the traffic stopped. Run
/// with the default in-memory streams (the fronting log replays) and with durable queues (each operator replays its
/// own log). The entity grains, routers and operators that lived on it lost what they had
/// applied since the last checkpoint, and no delivery will come to notice it: the survivor must replay as soon as the
/// membership declares the silo dead, not at the operators' next checkpoint.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SiloLossRecoveryTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Theory]
    [InlineData("Local")]
    [InlineData("AzureQueue")]
    public async Task Counts_are_whole_again_once_a_killed_silo_is_declared_dead_long_before_any_checkpoint(string streams)
    {
        var prefix = "loss" + Guid.NewGuid().ToString("N")[..8];
        var shared = TestSilo.DefaultSettings(azurite);
        shared["Keystone:Cluster:Mode"] = "AzureTable";
        shared["Keystone:Streaming:Provider"] = streams;
        shared["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        shared["Keystone:Streaming:AzureQueue:QueueCount"] = "4";
        shared["Keystone:Streaming:AzureQueue:VisibilityTimeout"] = "00:00:05";
        shared["Keystone:Aggregation:CheckpointInterval"] = "00:10:00";
        shared["Keystone:Aggregation:AllowedLateness"] = "01:00:00";
        shared["Keystone:Ads:CheckpointInterval"] = "00:10:00";
        shared["Keystone:Graph:CheckpointInterval"] = "00:10:00";
        Dictionary<string, string?> Own() => new(shared) { ["Keystone:Cluster:SiloPort"] = Port(), ["Keystone:Cluster:GatewayPort"] = Port() };

        var silos = new List<SiloProcess>();
        Exception? failure = null;
        try
        {
            // The first silo alone takes a warm-up, so every router and operator activates there; the second joins
            // afterwards and gets a share of the new entity grains. Killing it then takes entity memory away from
            // operators that live on: exactly what no delivery and no checkpoint within the wait would notice.
            var a = await SiloProcess.StartAsync(TestSilo.FreePort(), Own(), TimeSpan.FromSeconds(90));
            silos.Add(a);
            var warmUp = Enumerable.Range(0, 40).Select(n => TestEvents.Play($"{prefix}-w{n}", $"{prefix}-v0")).ToArray();
            await a.PostWithRetryAsync(warmUp);
            foreach (var e in warmUp)
                await Eventually.Until(() => ActivityEvents(a, e.Payload.GetString("user_id")!), n => n == 1, TimeSpan.FromSeconds(60), "the warm-up on the first silo");

            var ownB = Own();
            var b = await SiloProcess.StartAsync(TestSilo.FreePort(), ownB, TimeSpan.FromSeconds(90));
            silos.Add(b);
            var two = await Eventually.Until(() => Cluster(a), v => v is not null && Active(v).Count == 2, TimeSpan.FromSeconds(60), "two active members");
            var killed = Active(two!).Single(x => x.StartsWith($"127.0.0.1:{ownB["Keystone:Cluster:SiloPort"]}@", StringComparison.Ordinal));

            // 48 users and 3 campaigns, through the first silo's gateway: its routers and operators stay where they are,
            // while the new entity grains are placed on either silo.
            var plays = new Dictionary<string, long>();
            var impressions = new Dictionary<string, long>();
            var events = new List<KeystoneEvent>();
            for (var n = 0; n < 480; n++)
            {
                var user = $"{prefix}-u{n % 48}";
                if (n % 6 == 5)
                {
                    var campaign = $"{prefix}-c{n % 3}";
                    events.Add(TestEvents.AdImpression(user, campaign));
                    impressions[campaign] = impressions.GetValueOrDefault(campaign) + 1;
                }
                else
                {
                    events.Add(TestEvents.Play(user, $"{prefix}-v{n % 13}"));
                    plays[user] = plays.GetValueOrDefault(user) + 1;
                }
            }
            foreach (var chunk in events.Chunk(40)) await a.PostWithRetryAsync(chunk);

            foreach (var (user, count) in plays)
                await Eventually.Until(async () => (await ActivityEvents(a, user), await Watches(a, user)), n => n == (count, count), TimeSpan.FromSeconds(60), $"{user}'s {count} plays before the kill");
            foreach (var (campaign, count) in impressions)
                await Eventually.Until(() => Impressions(a, campaign), n => n == count, TimeSpan.FromSeconds(60), $"{campaign}'s {count} impressions before the kill");

            b.Kill();
            var clock = Stopwatch.StartNew();
            await Eventually.Until(() => Cluster(a), v => v is not null && v["members"]!.AsArray().Any(m => m!["address"]!.GetValue<string>() == killed && m["status"]!.GetValue<string>() == "Dead"),
                TimeSpan.FromSeconds(180), $"the killed silo {killed} declared dead");
            output.WriteLine($"{killed} declared dead {clock.Elapsed.TotalSeconds:0.0} s after the kill");

            // No operator checkpoints for ten minutes and no event arrives any more: only the replay on the silo's
            // departure can make these whole within the wait. (A user grain that lost everything answers 404: -1.)
            try
            {
                foreach (var (user, count) in plays)
                    await Eventually.Until(async () => (await ActivityEvents(a, user), await Watches(a, user)), n => n == (count, count), TimeSpan.FromSeconds(90), $"{user}'s {count} plays after the kill");
                foreach (var (campaign, count) in impressions)
                    await Eventually.Until(() => Impressions(a, campaign), n => n == count, TimeSpan.FromSeconds(60), $"{campaign}'s {count} impressions after the kill");
                output.WriteLine($"every count whole {clock.Elapsed.TotalSeconds:0.0} s after the kill");
            }
            finally
            {
                output.WriteLine("graph operators: " + await Text(a, "/v1/graph/operators"));
                output.WriteLine("aggregation operators: " + await Text(a, "/v1/aggregation/operators"));
                foreach (var (user, count) in plays)
                    output.WriteLine($"{user}: {count} plays, activity {await ActivityEvents(a, user)}, graph {await Watches(a, user)}");
            }
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            await StopAndReport(silos, failure, output);
        }
    }
}
