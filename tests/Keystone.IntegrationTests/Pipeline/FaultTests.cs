using System.Diagnostics;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Graph;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Faults under load: storage stops answering for 30 s; a network fault swallows storage requests for 10 s;
/// one silo of two is killed.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class FaultTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private static KeystoneEvent Play(string user, string video, DateTimeOffset at) => new(
        Guid.NewGuid(), "video.play.started", at, "1.0", new EventSource("fault-test", "tv", "us-east-1"),
        Payload.Create(("user_id", user), ("profile_id", user + "-p"), ("video_id", video), ("device_id", user + "-tv"), ("position_ms", 0L), ("quality", "HD")),
        EventMetadata.Empty);

    [Fact]
    public async Task Storage_frozen_for_30_seconds_under_load_loses_nothing_and_the_counts_are_exact()
    {
        // Its own Azurite, frozen (SIGSTOP of its process tree) for 30 s: every storage call hangs, as with a storage
        // outage behind a load balancer. (Killing and restarting it is not an option: Azurite keeps its metadata in
        // memory and saves it on a clean exit only, which waits for every open connection to close.) The tree, not
        // the pid: the emulator runs under a launcher (infra/run-azurite.mjs), and from the day that launcher came in
        // until stop 60 this test stopped only the launcher, so storage was never frozen. The lake query below fails
        // unless it is.
        await using var storage = await AzuriteProcess.StartAsync();
        ProcessPause? pause = null;
        try
        {
            var settings = TestSilo.DefaultSettings(azurite);
            settings["Keystone:Storage:ConnectionString"] = storage.ConnectionString;
            settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:02";
            // Redelivered events arrive after later ones: with no allowed lateness, those whose window has fired would
            // (correctly) go to the late side output instead of the totals this test counts.
            settings["Keystone:Aggregation:AllowedLateness"] = "01:00:00";
            settings["Keystone:Graph:CheckpointInterval"] = "00:00:02";
            settings["Keystone:Lake:StorageTimeout"] = "00:00:03";
            await using var silo = await TestSilo.StartAsync(settings);

            // 40 users × 60 plays over about 50 s; storage is frozen from second 10 to second 40.
            var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
            var events = Enumerable.Range(0, 2_400).Select(i => Play($"fault-u{i % 40}", $"fault-v{i % 97}", t0.AddMilliseconds(i * 20))).ToList();
            var clock = Stopwatch.StartNew();
            (int Status, string Body, string? RetryAfter) lakeAnswer = default;
            (int Code, string Stdout, string Stderr) cliAnswer = default;
            var outage = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(10));
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: freezing Azurite");
                pause = new ProcessPause(storage.ProcessId);
                var frozen = Stopwatch.StartNew();
                // A lake query meanwhile answers 503 with the reason while its caller waits, not Orleans' timeout
                // after 30 s; its reads are the only storage it needs.
                var sql = new { sql = "SELECT count(*) FROM events", from = t0.ToString("O"), to = t0.AddHours(1).ToString("O") };
                var lake = await silo.Http.PostAsync("/v1/analytics/query", new StringContent(System.Text.Json.JsonSerializer.Serialize(sql), System.Text.Encoding.UTF8, "application/json"));
                lakeAnswer = ((int)lake.StatusCode, await lake.Content.ReadAsStringAsync(), lake.Headers.RetryAfter?.ToString());
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the lake query answered {lakeAnswer.Status}");
                // The same through the Orleans gateway: the CLI says so and exits 3, not "lost contact with the cluster".
                cliAnswer = await KeystoneCli.RunAsync(silo, "query", "SELECT count(*) FROM events", "--from", sql.from, "--to", sql.to);
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: keystone query exited {cliAnswer.Code}");
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(0, 30 - frozen.Elapsed.TotalSeconds)));
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: thawing Azurite");
                pause.Dispose();
            });
            await PublishPacedAsync(silo, events, clock);
            await outage;
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: all published");
            Assert.True(lakeAnswer.Status == 503, $"the lake query during the freeze: {lakeAnswer.Status} {lakeAnswer.Body}");
            Assert.Contains("the lake's storage did not answer within 3 s (Keystone:Lake:StorageTimeout)", lakeAnswer.Body);
            Assert.Equal("5", lakeAnswer.RetryAfter);
            Assert.True(cliAnswer.Code == 3, $"keystone query during the freeze: exit {cliAnswer.Code}: {cliAnswer.Stderr}");
            Assert.Contains("keystone: the lake is unavailable: the lake's storage did not answer within 3 s (Keystone:Lake:StorageTimeout)", cliAnswer.Stderr);

            // Exact, per user: every play counted once by the aggregations and once on the graph edges.
            var query = await silo.QueryAsync();
            var expected = events.GroupBy(e => e.UserId!).ToDictionary(g => g.Key, g => (long)g.Count());
            foreach (var (user, count) in expected)
            {
                await Eventually.Until(async () => (await query.GetUserActivityAsync(user))?.Totals.Events ?? 0, n => n == count, TimeSpan.FromSeconds(120), $"{user}'s {count} plays in the aggregations");
                await Eventually.Until(async () => (await query.GetGraphEdgesAsync(NodeType.User, user, EdgeLabel.Watches, limit: 1000))?.Edges.Sum(e => e.Count) ?? 0,
                    n => n == count, TimeSpan.FromSeconds(60), $"{user}'s {count} plays on the graph");
            }
            // Redelivered messages may still be on their way: once sentinels published after them are through, they
            // must have changed nothing.
            await Drain.SentinelsAsync(silo);
            foreach (var (user, count) in expected)
                Assert.Equal(count, (await query.GetUserActivityAsync(user))!.Totals.Events);
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: counts exact");
        }
        finally
        {
            pause?.Dispose();
        }
    }

    [Fact]
    public async Task Storage_requests_a_network_fault_swallows_are_given_up_after_the_try_timeout_and_the_counts_are_exact()
    {
        // Blob storage (the fronting log, checkpoints, the lake) through a relay that is cut for 10 s under load: what
        // is sent meanwhile is never answered, as on connections a load balancer dropped. The storage itself answers
        // throughout, so unlike the freeze above nothing queued is answered afterwards: each try that was sent must
        // be given up, and sent again on a new connection. With the SDK's default (100 s a try) the silo would hold
        // its appends and checkpoints for minutes after the network is back.
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var tryTimeout = TimeSpan.FromSeconds(2);
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:ConnectionString"] = AzuriteProcess.BuildConnectionString(relay.Port, azurite.Azurite.QueuePort, azurite.Azurite.TablePort);
        settings["Keystone:Storage:RequestTryTimeout"] = tryTimeout.ToString();
        // One retry: an append sent into the cut fails within about 5 s (two tries and a back-off), before the relay heals.
        settings["Keystone:Storage:RequestRetries"] = "1";
        settings["Keystone:Checkpoints:Interval"] = "00:00:02";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:02";
        settings["Keystone:Aggregation:AllowedLateness"] = "01:00:00"; // see the freeze test
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:02";
        await using var silo = await TestSilo.StartAsync(settings);
        var requests = silo.Services.GetRequiredService<Keystone.Storage.StorageRequests>();

        // 20 users × 50 plays over 20 s; the relay is cut from second 5 for 10 s, and at least until the REST
        // requests sent into the cut have their answers.
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
        var events = Enumerable.Range(0, 1_000).Select(i => Play($"hole-u{i % 20}", $"hole-v{i % 53}", t0.AddMilliseconds(i * 20))).ToList();
        var restEvents = Enumerable.Range(0, 10).Select(i => Play($"hole-u{i}", "hole-rest", t0.AddSeconds(40).AddMilliseconds(i))).ToList();
        var clock = Stopwatch.StartNew();
        var longestWait = TimeSpan.Zero;
        var waitingSeen = 0;
        (int Status, string Body, string? RetryAfter) restAnswer = default, listingAnswer = default;
        var outage = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(5));
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: cutting the relay to blob storage");
            relay.Cut();
            var cut = Stopwatch.StartNew();
            // A producer over REST: its events could not be made durable, so it is told to send them again. An
            // operator's read of storage meanwhile is told to try again too, not given a 500.
            var rest = Task.WhenAll(Task.Run(async () =>
            {
                var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(restEvents)));
                restAnswer = ((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.RetryAfter?.ToString());
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the REST batch answered {restAnswer.Status}");
            }), Task.Run(async () =>
            {
                var letters = await silo.Http.GetAsync("/v1/dead-letters");
                listingAnswer = ((int)letters.StatusCode, await letters.Content.ReadAsStringAsync(), letters.Headers.RetryAfter?.ToString());
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the dead-letter listing answered {listingAnswer.Status}");
            }));
            // What the silo still waits on while nothing answers: never a try older than the timeout (and the
            // watch's own tick) once the first tries sent into the cut have had the time to be given up.
            while (cut.Elapsed < TimeSpan.FromSeconds(10) || (!rest.IsCompleted && cut.Elapsed < TimeSpan.FromSeconds(60)))
            {
                await Task.Delay(100);
                var inFlight = requests.InFlight();
                waitingSeen = Math.Max(waitingSeen, inFlight.Count);
                if (inFlight.Count > 0 && inFlight[0].Waiting > longestWait)
                {
                    if ((int)inFlight[0].Waiting.TotalSeconds > (int)longestWait.TotalSeconds || longestWait == TimeSpan.Zero)
                        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {inFlight.Count} waiting, the oldest {inFlight[0].Operation} for {inFlight[0].Waiting.TotalSeconds:0.0} s");
                    longestWait = inFlight[0].Waiting;
                }
            }
            relay.Heal();
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: healed; {relay.Swallowed:N0} bytes swallowed");
            await rest;
        });
        await PublishPacedAsync(silo, events, clock);
        await outage;
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: all published");
        // The fault was real: storage requests were sent into it and went nowhere.
        Assert.True(relay.Swallowed > 0 && waitingSeen > 0, $"the cut swallowed {relay.Swallowed} bytes; at most {waitingSeen} requests waited");
        Assert.True(longestWait < tryTimeout + TimeSpan.FromSeconds(2), $"a storage try waited {longestWait.TotalSeconds:0.0} s with Keystone:Storage:RequestTryTimeout at {tryTimeout.TotalSeconds} s");
        Assert.True(restAnswer.Status == 503, $"the REST batch during the cut: {restAnswer.Status} {restAnswer.Body}");
        Assert.Contains("the fronting log did not make the events durable", restAnswer.Body);
        Assert.Equal("5", restAnswer.RetryAfter);
        Assert.True(listingAnswer.Status == 503, $"the dead-letter listing during the cut: {listingAnswer.Status} {listingAnswer.Body}");
        Assert.Contains("\"title\":\"Storage unavailable\"", listingAnswer.Body);
        Assert.Contains("the storage this request needs failed or did not answer", listingAnswer.Body);
        Assert.Equal("5", listingAnswer.RetryAfter);
        // Sent again, as told, once storage is reachable: accepted, and counted once with the rest below.
        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(restEvents)))).StatusCode);
        events.AddRange(restEvents);

        var query = await silo.QueryAsync();
        var expected = events.GroupBy(e => e.UserId!).ToDictionary(g => g.Key, g => (long)g.Count());
        foreach (var (user, count) in expected)
        {
            await Eventually.Until(async () => (await query.GetUserActivityAsync(user))?.Totals.Events ?? 0, n => n == count, TimeSpan.FromSeconds(60), $"{user}'s {count} plays in the aggregations");
            await Eventually.Until(async () => (await query.GetGraphEdgesAsync(NodeType.User, user, EdgeLabel.Watches, limit: 1000))?.Edges.Sum(e => e.Count) ?? 0,
                n => n == count, TimeSpan.FromSeconds(60), $"{user}'s {count} plays on the graph");
        }
        // And checkpoints complete again: the fronting log's records of the cut are covered, so a restart replays
        // no more than an interval.
        var coordinator = silo.Client.GetGrain<Keystone.Checkpointing.ICheckpointCoordinatorGrain>(0);
        var before = (await coordinator.GetStatus()).Completed;
        await Eventually.Until(async () => (await coordinator.GetStatus()).Completed, n => n > before + 1, TimeSpan.FromSeconds(30), "two more checkpoints complete");
        await Drain.SentinelsAsync(silo);
        foreach (var (user, count) in expected)
            Assert.Equal(count, (await query.GetUserActivityAsync(user))!.Totals.Events);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: counts exact");
    }

    // One event every 20 ms through the SDK, with retries that outlast the fault: a producer that must lose nothing.
    private static async Task PublishPacedAsync(TestSilo silo, IReadOnlyList<KeystoneEvent> events, Stopwatch clock)
    {
        var options = new PublisherOptions { Linger = TimeSpan.FromMilliseconds(20), MaxBlockTime = TimeSpan.FromMinutes(2), MaxRetries = 20, MaxRetryDelay = TimeSpan.FromSeconds(5) };
        await using var publisher = KeystonePublisher.Create(silo.Client, options);
        for (var i = 0; i < events.Count; i++)
        {
            while (clock.Elapsed.TotalMilliseconds < i * 20.0) await Task.Delay(5);
            Assert.True((await publisher.PublishAsync(events[i])).IsQueued);
        }
        await publisher.FlushAsync();
    }

    [Fact]
    public async Task Killing_one_of_two_silos_under_load_moves_its_partitions_and_the_counts_are_exact()
    {
        // Durable streams (Azure Queue on Azurite), so what the dead silo had pulled but not finished is redelivered.
        var prefix = "kill2" + Guid.NewGuid().ToString("N")[..8];
        var first = TestSilo.DefaultSettings(azurite);
        first["Keystone:Streaming:Provider"] = "AzureQueue";
        first["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        first["Keystone:Streaming:AzureQueue:QueueCount"] = "4";
        first["Keystone:Streaming:AzureQueue:VisibilityTimeout"] = "00:00:05";
        first["Keystone:Aggregation:CheckpointInterval"] = "00:00:02";
        first["Keystone:Aggregation:AllowedLateness"] = "01:00:00"; // see the test above
        var second = new Dictionary<string, string?>(first)
        {
            ["Keystone:Cluster:SiloPort"] = TestSilo.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:GatewayPort"] = TestSilo.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:PrimarySiloPort"] = first["Keystone:Cluster:SiloPort"],
        };

        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
        var events = Enumerable.Range(0, 1_200).Select(i => Play($"{prefix}-u{i % 30}", $"{prefix}-v{i % 17}", t0.AddMilliseconds(i * 50))).ToList();
        var requests = events.Chunk(40).ToList();

        await using var a = await SiloProcess.StartAsync(TestSilo.FreePort(), first);
        var b = await SiloProcess.StartAsync(TestSilo.FreePort(), second);
        try
        {
            for (var i = 0; i < requests.Count; i++)
            {
                if (i == requests.Count / 2)
                {
                    output.WriteLine($"killing the second silo after {i} of {requests.Count} requests");
                    b.Kill();
                }
                // Both silos take traffic until one dies; then the survivor takes it all.
                var via = i < requests.Count / 2 && i % 2 == 1 ? b : a;
                await via.PostWithRetryAsync(requests[i]);
            }

            var expected = events.GroupBy(e => e.UserId!).ToDictionary(g => g.Key, g => (long)g.Count());
            foreach (var (user, count) in expected)
            {
                await Eventually.Until(() => Events(a, user), n => n == count, TimeSpan.FromSeconds(120), $"{user}'s {count} plays on the surviving silo");
                await Eventually.Until(() => Watches(a, user), n => n == count, TimeSpan.FromSeconds(60), $"{user}'s {count} plays on the graph");
            }
            await Drain.SentinelsAsync(a.Http, int.Parse(first["Keystone:Ingest:Partitions"]!, System.Globalization.CultureInfo.InvariantCulture));
            foreach (var (user, count) in expected)
                Assert.Equal((count, count), (await Events(a, user), await Watches(a, user)));
        }
        finally
        {
            // What each silo's pipeline reported (replays, lost activations, failed checkpoints), then the survivor's tail.
            output.WriteLine("--- killed silo, Keystone warnings\n" + Deployment.ClusterTestKit.KeystoneWarnings(b.Output));
            output.WriteLine("--- surviving silo, Keystone warnings\n" + Deployment.ClusterTestKit.KeystoneWarnings(a.Output));
            output.WriteLine(a.Output.Length > 4000 ? a.Output[^4000..] : a.Output);
            await b.DisposeAsync();
        }
    }

    private static async Task<long> Watches(SiloProcess silo, string user)
    {
        try
        {
            var response = await silo.Http.GetAsync($"/v1/graph/users/{user}/edges?label=WATCHES&limit=100");
            if (!response.IsSuccessStatusCode) return 0;
            return System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["edges"]!.AsArray().Sum(e => e!["count"]!.GetValue<long>());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    private static async Task<long> Events(SiloProcess silo, string user)
    {
        try
        {
            var response = await silo.Http.GetAsync($"/v1/users/{user}/activity");
            if (!response.IsSuccessStatusCode) return 0;
            return System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }
}
