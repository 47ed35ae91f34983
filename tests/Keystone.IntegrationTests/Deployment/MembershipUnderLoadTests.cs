using System.Diagnostics;
using System.Text.Json.Nodes;
using Keystone.Client.Hosting;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;
using static Keystone.IntegrationTests.Deployment.ClusterTestKit;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// Silos joining and leaving under a steady SDK load, with Azure Table membership on Azurite: one silo, then two more,
/// then the first stopped gracefully (SIGTERM, as Kubernetes stops a pod) and a second killed (SIGKILL). Every count
/// must come out exact, partitions must move to the silos left, and any silo must answer for any entity.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class MembershipUnderLoadTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Silos_join_and_leave_under_steady_SDK_load_and_every_count_is_exact()
    {
        var prefix = "mem" + Guid.NewGuid().ToString("N")[..8];
        var shared = TestSilo.DefaultSettings(azurite);
        shared["Keystone:Cluster:Mode"] = "AzureTable";
        // Durable streams: what a killed silo had pulled but not finished is delivered again to another.
        shared["Keystone:Streaming:Provider"] = "AzureQueue";
        shared["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        shared["Keystone:Streaming:AzureQueue:QueueCount"] = "4";
        shared["Keystone:Streaming:AzureQueue:VisibilityTimeout"] = "00:00:05";
        shared["Keystone:Aggregation:CheckpointInterval"] = "00:00:02";
        shared["Keystone:Aggregation:AllowedLateness"] = "01:00:00";
        shared["Keystone:Ads:CheckpointInterval"] = "00:00:02";
        // An entity that lost its memory with the killed silo and gets nothing more is noticed at its operator's next
        // checkpoint (the graph's default is 5 minutes): every operator checkpoints as often here.
        shared["Keystone:Graph:CheckpointInterval"] = "00:00:02";
        Dictionary<string, string?> Own() => new(shared) { ["Keystone:Cluster:SiloPort"] = Port(), ["Keystone:Cluster:GatewayPort"] = Port() };
        var clusterId = shared["Keystone:Cluster:ClusterId"]!;

        var silos = new List<SiloProcess>();
        var deadLetters = Path.Combine(Path.GetTempPath(), $"{prefix}-deadletter.jsonl");
        IHost? client = null;
        var producerLog = new RecentWarnings();
        Exception? failure = null;
        try
        {
            var a = await SiloProcess.StartAsync(TestSilo.FreePort(), Own(), TimeSpan.FromSeconds(90));
            silos.Add(a);

            // A producer on the SDK, finding the gateways in the membership table as a service in the cluster would.
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            // The producer's own warnings (its retries and why) for the report of a failure: its console is not shown.
            builder.Logging.AddProvider(producerLog);
            builder.UseOrleansClient(c => c.UseKeystoneCluster(new KeystoneClientOptions { AzureTableConnectionString = azurite.ConnectionString, ClusterId = clusterId }));
            client = builder.Build();
            await client.StartAsync();
            // A batch for a partition that lived on the killed silo fails until the cluster declares that silo dead, which
            // this test allows 180 s below. The producer retries at least that long (0.5 + 1 + 2 + 4 s, then 5 s apart),
            // as a producer must when it is to lose nothing; with 12 retries (about 47 s) one run dead-lettered ten
            // events while the survivor had not yet declared the killed silo dead.
            await using var publisher = KeystonePublisher.Create(client.Services.GetRequiredService<IClusterClient>(), new PublisherOptions
            {
                Linger = TimeSpan.FromMilliseconds(50),
                MaxRetries = 40,
                RetryBaseDelay = TimeSpan.FromMilliseconds(500),
                MaxRetryDelay = TimeSpan.FromSeconds(5),
                DeadLetterPath = deadLetters,
            });

            // Steady load: 100 events/s, plays for 24 users and ad impressions for 3 campaigns.
            var plays = new Dictionary<string, long>();
            var impressions = new Dictionary<string, long>();
            using var stopLoad = new CancellationTokenSource();
            var load = Task.Run(async () =>
            {
                for (var tick = 0; !stopLoad.IsCancellationRequested; tick++)
                {
                    for (var i = 0; i < 10; i++)
                    {
                        var n = tick * 10 + i;
                        KeystoneEvent e;
                        if (n % 5 == 4)
                        {
                            var campaign = $"{prefix}-c{n % 3}";
                            e = TestEvents.AdImpression($"{prefix}-u{n % 24}", campaign);
                            impressions[campaign] = impressions.GetValueOrDefault(campaign) + 1;
                        }
                        else
                        {
                            var user = $"{prefix}-u{n % 24}";
                            e = TestEvents.Play(user, $"{prefix}-v{n % 11}");
                            plays[user] = plays.GetValueOrDefault(user) + 1;
                        }
                        var result = await publisher.PublishAsync(e);
                        Assert.Equal(PublishStatus.Queued, result.Status);
                    }
                    await Task.Delay(100);
                }
            });

            await Task.Delay(TimeSpan.FromSeconds(3));
            // Two more silos join under load.
            var (ownB, ownC) = (Own(), Own());
            var joined = await Task.WhenAll(SiloProcess.StartAsync(TestSilo.FreePort(), ownB, TimeSpan.FromSeconds(90)), SiloProcess.StartAsync(TestSilo.FreePort(), ownC, TimeSpan.FromSeconds(90)));
            silos.AddRange(joined);
            var (b, c) = (joined[0], joined[1]);
            var three = await Eventually.Until(() => Cluster(b), v => v is not null && Active(v).Count == 3, TimeSpan.FromSeconds(60), "three active members");
            output.WriteLine("three silos: " + three!.ToJsonString());
            var addresses = Active(three);

            // Any silo's REST gateway answers for any entity, wherever its grain lives.
            foreach (var silo in silos)
            {
                var response = await silo.Http.GetAsync($"/v1/users/{prefix}-u1/activity");
                Assert.True(response.IsSuccessStatusCode, $"{silo.HttpPort}: {response.StatusCode}");
            }

            // The first silo, where every partition started, leaves gracefully: its partitions move to the others.
            var before = RouterSilos(three);
            Assert.Single(before.Distinct());
            Assert.Equal(0, await a.StopAsync(TimeSpan.FromSeconds(60)));
            // Grains with requests waiting at the stop are not migrated with their memory (Orleans could not carry their
            // states, and logged an error per grain): they restore from their checkpoints on the silos left.
            Assert.DoesNotContain("Failed to dehydrate", a.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Failed to migrate activation", a.Output, StringComparison.Ordinal);
            var afterStop = await Eventually.Until(() => Cluster(b), v => v is not null && Active(v).Count == 2 && RouterSilos(v).All(s => s != before[0] && Active(v).Contains(s)),
                TimeSpan.FromSeconds(60), "the partitions active on the two silos left");
            output.WriteLine("after the graceful stop: " + afterStop!.ToJsonString());

            // Then one of the two is killed outright.
            await Task.Delay(TimeSpan.FromSeconds(2));
            // Its address in the membership, by its silo port (asked of no silo: right after a member left, a silo's
            // /v1/stats, which asks the whole cluster, can take longer than a client waits).
            var killed = addresses.Single(x => x.StartsWith($"127.0.0.1:{ownB["Keystone:Cluster:SiloPort"]}@", StringComparison.Ordinal));
            b.Kill();
            var clock = Stopwatch.StartNew();
            var requestsAtKill = await StorageRequests(c);
            await Task.Delay(TimeSpan.FromSeconds(3));
            await stopLoad.CancelAsync();
            await load;
            await publisher.FlushAsync();
            var sent = publisher.Metrics.Snapshot();
            Assert.Equal(0, sent.DeadLettered);
            Assert.Equal(0, sent.Rejected);
            output.WriteLine($"load stopped and flushed {clock.Elapsed.TotalSeconds:0.0} s after the kill");

            // Nothing that lived on the killed silo moves until the survivor declares it dead. Orleans needs three missed
            // probes for that, and stretches each probe's timeout (up to 20 s) while the survivor's own health is
            // degraded, as on a loaded machine: a minute or more. The counts are awaited after that.
            await Eventually.Until(() => Cluster(c), v => v is not null && v["members"]!.AsArray().Any(m => m!["address"]!.GetValue<string>() == killed && m["status"]!.GetValue<string>() == "Dead"),
                TimeSpan.FromSeconds(180), $"the killed silo {killed} declared dead");
            output.WriteLine($"{killed} declared dead {clock.Elapsed.TotalSeconds:0.0} s after the kill");
            // What the survivor asked of storage meanwhile, by operation (a loaded emulator slows everything after).
            var requestsAtDead = await StorageRequests(c);
            output.WriteLine("the survivor's storage requests until then: " + string.Join(", ", requestsAtDead
                .Select(r => (r.Key, Count: r.Value - requestsAtKill.GetValueOrDefault(r.Key))).Where(r => r.Count > 0).OrderByDescending(r => r.Count)
                .Select(r => $"{r.Key} {r.Count / clock.Elapsed.TotalSeconds:0.0}/s")));

            // Every count exact on the survivor, which now runs every partition.
            try
            {
                foreach (var (user, count) in plays)
                {
                    await Eventually.Until(() => ActivityEvents(c, user), n => n == count, TimeSpan.FromSeconds(120), $"{user}'s {count} plays");
                    await Eventually.Until(() => Watches(c, user), n => n == count, TimeSpan.FromSeconds(60), $"{user}'s {count} plays on the graph");
                }
            }
            finally
            {
                // Diagnostics only: a silo that does not answer must not replace the failure being explained.
                output.WriteLine("graph operators: " + await Text(c, "/v1/graph/operators"));
                output.WriteLine("aggregation operators: " + await Text(c, "/v1/aggregation/operators"));
                output.WriteLine("dead letters: " + await Text(c, "/v1/dead-letters"));
                foreach (var (user, count) in plays)
                    output.WriteLine($"{user}: {count} plays, activity {await ActivityEvents(c, user)}, graph {await Watches(c, user)}");
            }
            output.WriteLine($"plays counted {clock.Elapsed.TotalSeconds:0.0} s after the kill");
            output.WriteLine("the survivor's storage requests from then until the plays were counted: " + string.Join(", ", (await StorageRequests(c))
                .Select(r => (r.Key, Count: r.Value - requestsAtDead.GetValueOrDefault(r.Key))).Where(r => r.Count > 0).OrderByDescending(r => r.Count)
                .Select(r => $"{r.Key} {r.Count}")));
            try
            {
                foreach (var (campaign, count) in impressions)
                    await Eventually.Until(() => Impressions(c, campaign), n => n == count, TimeSpan.FromSeconds(60), $"{campaign}'s {count} impressions");
            }
            finally
            {
                output.WriteLine("ads operators: " + await Text(c, "/v1/ads/operators"));
                foreach (var campaign in impressions.Keys) output.WriteLine($"{campaign}: " + await Text(c, $"/v1/ads/campaigns/{campaign}"));
            }
            // A sentinel per partition behind everything: every partition has traffic again (a router activates with its
            // partition's next message; one whose silo died idle has none until then), and has processed what came before.
            await Drain.SentinelsAsync(c.Http, int.Parse(shared["Keystone:Ingest:Partitions"]!, System.Globalization.CultureInfo.InvariantCulture));
            var last = await Eventually.Until(() => Cluster(c), v => v is not null && Active(v).Count == 1 && RouterSilos(v).All(s => s == Active(v)[0]),
                TimeSpan.FromSeconds(60), "one member left, running every partition");
            output.WriteLine("after the kill: " + last!.ToJsonString());
            var statuses = last!["members"]!.AsArray().ToDictionary(m => m!["address"]!.GetValue<string>(), m => m!["status"]!.GetValue<string>());
            Assert.All(addresses.Where(x => x != Active(last)[0]), x => Assert.Equal("Dead", statuses[x]));
            // /v1/stats says the same per silo: this silo's address and where the partitions run.
            var stats = JsonNode.Parse(await c.Http.GetStringAsync("/v1/stats"))!;
            Assert.Equal(Active(last)[0], stats["silo_address"]!.GetValue<string>());
            Assert.All(RouterSilos(stats["cluster"]!), s => Assert.Equal(Active(last)[0], s));
            // And nothing counted twice: the sentinels are through, so a count above the truth would stay above it. A
            // count below it is awaited once more: an entity grain that lost its memory after its operator last touched
            // it is replayed to only when that operator next checkpoints (a recovery bounded by the interval).
            foreach (var (user, count) in plays)
                await Eventually.Until(async () => (await ActivityEvents(c, user), await Watches(c, user)), n => n == (count, count), TimeSpan.FromSeconds(60), $"{user}'s {count} plays, counted and on the graph");
            foreach (var (campaign, count) in impressions)
                await Eventually.Until(() => Impressions(c, campaign), n => n == count, TimeSpan.FromSeconds(60), $"{campaign}'s {count} impressions");
            // A grain on the killed silo failed every call until the silo was declared dead: its events waited, and none
            // was taken for poison.
            Assert.Empty(JsonNode.Parse(await c.Http.GetStringAsync("/v1/dead-letters"))!["items"]!.AsArray());

            // keystone info lists the members and where the partitions run.
            // (A minute to connect: on a loaded machine a cold client process can take longer than the default 15 s.)
            var info = await Cli("info", "--azure-table", azurite.ConnectionString, "--cluster-id", clusterId, "--connect-timeout", "60s", "--verbose");
            output.WriteLine(info);
            Assert.Contains("1 active of 3 in the membership table", info);
            Assert.Contains(Active(last)[0], info);
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            if (LastReadFailure is { } read) output.WriteLine("--- the last read that failed: " + read);
            output.WriteLine("--- the producer's warnings\n" + producerLog.Describe(TimeSpan.FromMinutes(10), 60));
            if (failure is not null)
            {
                if (File.Exists(deadLetters)) output.WriteLine("--- the producer's dead letters\n" + string.Join('\n', File.ReadLines(deadLetters).Select(l => l.Length > 600 ? l[..600] : l)));
            }
            await StopAndReport(silos, failure, output);
            if (client is not null)
            {
                await client.StopAsync(TimeSpan.FromSeconds(5));
                client.Dispose();
            }
            File.Delete(deadLetters);
        }
    }

    private static async Task<Dictionary<string, double>> StorageRequests(SiloProcess silo)
    {
        var counts = new Dictionary<string, double>();
        try
        {
            foreach (var (labels, value) in PrometheusText.Samples(await silo.Http.GetStringAsync("/metrics"), "keystone_storage_requests_total"))
                if (PrometheusText.Label(labels, "operation") is { } operation) counts[operation] = value;
        }
        catch (HttpRequestException)
        {
        }
        return counts;
    }

    private static async Task<string> Cli(params string[] args)
    {
        var dll = Path.Combine(Path.GetDirectoryName(SiloProcess.SiloDll())!.Replace(Path.Combine("silo", "bin"), Path.Combine("client", "Keystone.Cli", "bin"), StringComparison.Ordinal), "keystone.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"keystone {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }
}
