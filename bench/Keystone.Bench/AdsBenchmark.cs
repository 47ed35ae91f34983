using System.Diagnostics;
using Keystone.Ads;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.Bench;

public sealed record AdsResult(
    long Events,
    TimeSpan Elapsed,
    IReadOnlyDictionary<string, LatencySnapshot> CountedByType,
    LatencySnapshot EligibilityGrain,
    LatencySnapshot EligibilityRest,
    long Billable,
    long Invalid,
    LatencySnapshot LogAppend,
    LatencySnapshot Dispatch,
    TimeSpan GcPauses,
    long Exported,
    long ExportPending,
    (long Count, double P50, double P99, double P999, double Max)? EligibilityOutside = null,
    IReadOnlyList<(string Stage, LatencySnapshot Lag)>? Stages = null,
    string? GcPauseDetail = null,
    string? LateAtIngest = null)
{
    public double EventsPerSecond => Events / Elapsed.TotalSeconds;
}

/// <summary>
/// The ads path under a realistic mix, in real time: ad showings start at a steady rate; each has its impression,
/// quartiles 4, 8 and 12 s later, then a complete (70 %) at 15 s or a skip (25 %) at 5 s, and 2 % get a click 3 s
/// in. Every event is stamped when it is published, so "publish → counted" is the time until its campaign grain has
/// applied it. Meanwhile an ad server asks eligibility questions through the Orleans client and over REST.
/// </summary>
public static class AdsBenchmark
{
    private const int Campaigns = 50;
    private const int Profiles = 20_000;

    /// <param name="askerProcess">Whether the ad server's eligibility questions through the Orleans client come from a
    /// process of its own (<see cref="ExternalAsker"/>) instead of this one.</param>
    /// <param name="producerProcess">Whether the ad events come from a process of their own (<see cref="ExternalAdsProducer"/>),
    /// as an ad server's would: their batches' timers and the stamps' wait then share neither this process's thread
    /// pool nor its GC pauses.</param>
    public static async Task<AdsResult> Run(BenchCluster cluster, int rate, int seconds, PublisherOptions options, bool askerProcess = false, bool producerProcess = false)
    {
        // With the producer in a process of its own, only the count is needed here: its 400,000 events would sit in this
        // process's oldest generation through the run.
        var timeline = producerProcess ? null : MeasuredTimeline(rate, seconds);
        var count = timeline?.Count ?? MeasuredTimeline(rate, seconds).Count;
        using var stageLag = new StageLag();
        using var pauses = new GcPauseListener();
        var operators = Enumerable.Range(0, cluster.Partitions).Select(p => cluster.Client.GetGrain<IAdsOperatorGrain>(StreamNames.PartitionKey(p))).ToArray();
        var query = cluster.Query;
        for (var c = 0; c < Campaigns; c++)
            await query.ConfigureCampaignAsync(CampaignId(c), new CampaignSettings($"Campaign {c}", 1_000_000_000_000, new FrequencyCap(20, TimeSpan.FromHours(1))));

        var warmedUp = await WarmUp(cluster, operators, options);
        // The timeline (400,000 events made up front, in this process) and the warm-up's garbage are the harness's, not
        // the pipeline's: without a full collection now, the first one during the run paused everything for 250-300 ms
        // about 10 s in (tracing each late event showed it), and that pause was the p99 of most event types.
        using var asker = askerProcess ? ExternalAsker.Start(cluster, 400, Campaigns, Profiles) : null;
        using var producer = producerProcess ? ExternalAdsProducer.Start(cluster, rate, seconds, options) : null;
        if (producer is not null) await Counted(operators, warmedUp + ProducerWarmUpTimeline().Count);
        foreach (var o in operators) await o.ResetStats();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();

        var pausesBefore = GC.GetTotalPauseDuration();
        pauses.Reset();
        stageLag.Reset();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var grainEligibility = new LatencyHistogram();
        var restEligibility = new LatencyHistogram();
        if (asker is not null) await asker.SendAsync("go");
        var askers = new[]
        {
            asker is null ? AskEligibility(stop.Token, 400, grainEligibility, (c, p) => query.CheckEligibilityAsync(c, p)) : Task.CompletedTask,
            AskEligibility(stop.Token, 100, restEligibility, async (c, p) => (await cluster.Http.GetAsync($"/v1/ads/eligibility?campaign={c}&profile={p}")).EnsureSuccessStatusCode()),
        };
        var progress = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(TimeSpan.FromSeconds(5), stop.Token); } catch (OperationCanceledException) { break; }
                var s = await Task.WhenAll(operators.Select(o => o.GetStats()));
                Console.WriteLine($"    ads: {clock.Elapsed.TotalSeconds:0} s, counted {s.Sum(x => x.Events):N0} of {count:N0}, checkpoints {s.Sum(x => x.Checkpoints)}, GC pauses {(GC.GetTotalPauseDuration() - pausesBefore).TotalSeconds:0.00} s");
            }
        });

        if (timeline is not null)
        {
            var sent = await PublishAsync(cluster.Client, timeline, options);
            Console.WriteLine($"    ads: producer done after {clock.Elapsed.TotalSeconds:0.00} s, {sent.Batches:N0} batches, flushed (first event queued -> acknowledged) p50 {sent.FlushLatency.Percentile(0.5):0.0} ms, p99 {sent.FlushLatency.Percentile(0.99):0.0} ms");
        }
        else
        {
            var sent = await ExternalAdsProducer.PublishAsync(producer!);
            Console.WriteLine($"    ads: producer process done after {sent.Seconds:0.00} s, {sent.Batches:N0} batches, flushed (first event queued -> acknowledged) p50 {sent.FlushP50:0.0} ms, p99 {sent.FlushP99:0.0} ms; its GC pauses {sent.GcPauses:0.00} s");
        }

        AdsOperatorStats[] stats;
        while (true)
        {
            stats = await Task.WhenAll(operators.Select(o => o.GetStats()));
            if (stats.Sum(s => s.Events) >= count) break;
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds) + TimeSpan.FromMinutes(5)) throw new TimeoutException($"campaigns counted {stats.Sum(s => s.Events)} of {count} ad events");
            await Task.Delay(50);
        }
        var elapsed = clock.Elapsed;
        await stop.CancelAsync();
        await Task.WhenAll(askers.Append(progress));
        var outside = asker is null ? ((long, double, double, double, double)?)null : await ExternalAsker.StopAsync(asker);

        var byType = stats.SelectMany(s => s.CountedLag).GroupBy(p => p.Key)
            .ToDictionary(g => g.Key, g => LatencySnapshot.Merge(g.Select(p => p.Value)), StringComparer.Ordinal);
        return new AdsResult(stats.Sum(s => s.Events), elapsed, byType, grainEligibility.Snapshot(), restEligibility.Snapshot(),
            stats.Sum(s => s.Billable), stats.Sum(s => s.Invalid), LatencySnapshot.Merge(stats.Select(s => s.LogAppend)),
            LatencySnapshot.Merge(stats.Select(s => s.Dispatch)), GC.GetTotalPauseDuration() - pausesBefore,
            stats.Sum(s => s.Exported), stats.Sum(s => (long)s.ExportPending), outside, stageLag.Snapshot(), pauses.Describe(), DescribeLate(stageLag));
    }

    // Sampled events more than 50 ms late at ingest, and the quarter-seconds where a twentieth or more of them came.
    private static string DescribeLate(StageLag stageLag)
    {
        var late = stageLag.Late;
        if (late == 0) return $"no sampled event reached ingest more than {StageLag.LateAtIngest.TotalMilliseconds:0} ms after it was published";
        var bursts = stageLag.LateWindows(Math.Max(10, late / 20));
        return $"{late:N0} sampled events reached ingest more than {StageLag.LateAtIngest.TotalMilliseconds:0} ms after they were published; " +
            (bursts.Count == 0 ? "spread over the run" : "quarter-seconds with the most: " + string.Join(", ", bursts.Select(b => $"{b.Second:0.00} s ({b.Count}, up to {b.WorstMilliseconds:0} ms)")));
    }

    /// <summary>Ad traffic only (JIT, activations, first checkpoints), published at once. A method of its own so that
    /// its 100,000 events are garbage once it returns: a local of <see cref="Run"/> lives in its state machine, and
    /// held them beside the silo through the run (heap dumps of ads runs with the producer apart: the sampled events still in the process were held there).</summary>
    private static async Task<int> WarmUp(BenchCluster cluster, IAdsOperatorGrain[] operators, PublisherOptions options)
    {
        var warmUp = Timeline(5_000, 20, new Random(12));
        await using (var publisher = KeystonePublisher.Create(cluster.Client, options))
        {
            foreach (var (_, e) in warmUp) await publisher.PublishAsync(e with { Timestamp = DateTimeOffset.UtcNow });
            await publisher.FlushAsync();
        }
        await Counted(operators, warmUp.Count);
        return warmUp.Count;
    }

    private static async Task Counted(IAdsOperatorGrain[] operators, long events)
    {
        while ((await Task.WhenAll(operators.Select(o => o.GetStats()))).Sum(s => s.Events) < events) await Task.Delay(100);
    }

    private static string CampaignId(int c) => $"bench-campaign-{c:D3}";

    /// <summary>The run's events, each published when it is due (from the call) and stamped as it is.</summary>
    internal static async Task<PublisherSnapshot> PublishAsync(IClusterClient client, List<(TimeSpan Due, KeystoneEvent Event)> timeline, PublisherOptions options)
    {
        var clock = Stopwatch.StartNew();
        await using var publisher = KeystonePublisher.Create(client, options);
        for (var i = 0; i < timeline.Count; i++)
        {
            var (due, e) = timeline[i];
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1)) await Task.Delay(wait);
            var result = await publisher.PublishAsync(e with { Timestamp = DateTimeOffset.UtcNow });
            if (!result.IsQueued) throw new InvalidOperationException($"event {i} was not queued: {result}");
        }
        await publisher.FlushAsync();
        return publisher.Metrics.Snapshot();
    }

    /// <summary>What a producer process publishes, in real time, before it says it is ready (2,000 events over 2 s).</summary>
    internal static List<(TimeSpan Due, KeystoneEvent Event)> ProducerWarmUpTimeline() => Timeline(1_000, 2, new Random(13));

    /// <summary>The measured run's events (the same in the bench and in its producer process).</summary>
    internal static List<(TimeSpan Due, KeystoneEvent Event)> MeasuredTimeline(int rate, int seconds) => Timeline(rate, seconds, new Random(11));

    internal static Task AskEligibility(CancellationToken stop, int perSecond, LatencyHistogram histogram, Func<string, string, Task> ask, int campaigns = Campaigns, int profiles = Profiles) => Task.Run(async () =>
    {
        var random = new Random(perSecond);
        var clock = Stopwatch.StartNew();
        long asked = 0;
        while (!stop.IsCancellationRequested)
        {
            if (asked >= clock.Elapsed.TotalSeconds * perSecond)
            {
                try { await Task.Delay(1, stop); } catch (OperationCanceledException) { break; }
                continue;
            }
            asked++;
            var started = Stopwatch.GetTimestamp();
            await ask(CampaignId(random.Next(campaigns)), $"bench-profile-{random.Next(profiles):D5}");
            histogram.Record((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
    });

    /// <summary>Every event with the moment (from the start) it is due; sorted by that moment.</summary>
    private static List<(TimeSpan Due, KeystoneEvent Event)> Timeline(int rate, int seconds, Random random)
    {
        // About 4.2 events per showing: 1 impression + 0.75 × 3 quartiles + 0.25 skips + 0.70 completes + 0.02 clicks.
        var showings = (int)(rate * (double)seconds / 4.22);
        var span = Math.Max(1, seconds - 15);
        var timeline = new List<(TimeSpan, KeystoneEvent)>(rate * seconds + 1_000);
        for (var i = 0; i < showings; i++)
        {
            var start = TimeSpan.FromSeconds(span * (double)i / showings);
            var profile = random.Next(Profiles);
            var user = $"bench-user-{profile / 3:D5}";
            var payload = new Dictionary<string, object?>
            {
                ["campaign_id"] = CampaignId(random.Next(Campaigns)),
                ["ad_id"] = $"ad-{random.Next(200)}",
                ["creative_id"] = $"cr-{random.Next(400)}",
                ["user_id"] = user,
                ["profile_id"] = $"bench-profile-{profile:D5}",
                ["device_id"] = $"bench-device-{profile:D5}",
                ["ad_session_id"] = Guid.NewGuid().ToString("N"),
            };
            void Add(string type, double after, long? cost = null)
            {
                var fields = payload.Select(p => (p.Key, p.Value)).ToList();
                if (cost is not null) fields.Add(("cost_micros", cost));
                timeline.Add((start + TimeSpan.FromSeconds(after), new KeystoneEvent(Guid.NewGuid(), type, DateTimeOffset.UnixEpoch, "1.0",
                    new EventSource("ad-gateway", "smart_tv", "us-east-1"), Payload.Create([.. fields]), EventMetadata.Empty)));
            }
            Add("ad.impression", 0, 2_000 + random.Next(3_000));
            var roll = random.NextDouble();
            if (random.NextDouble() < 0.02) Add("ad.click", 3);
            if (roll < 0.25)
            {
                Add("ad.skip", 5);
                continue;
            }
            Add("ad.first_quartile", 4);
            Add("ad.midpoint", 8);
            Add("ad.third_quartile", 12);
            if (roll < 0.95) Add("ad.complete", 15);
        }
        timeline.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return timeline;
    }
}
