using System.Diagnostics;
using Keystone.Events;

namespace Keystone.Bench;

/// <summary>
/// How far the stateful operators have got: events the window operators took, the graph operators applied, and the
/// campaigns applied (or recognised as repeats), summed over partitions. Taps count an event when it reaches a topic;
/// the operators consume the same topics on their own and can be seconds behind at saturation, so a run over the
/// shipped rules ends when both have seen every event, not when the taps have.
/// </summary>
public sealed record OperatorProgress(long Activity, long Graph, long Ads)
{
    public static readonly OperatorProgress None = new(0, 0, 0);

    public static OperatorProgress operator +(OperatorProgress a, OperatorProgress b) => new(a.Activity + b.Activity, a.Graph + b.Graph, a.Ads + b.Ads);

    public bool Reached(OperatorProgress target) => Activity >= target.Activity && Graph >= target.Graph && Ads >= target.Ads;

    public bool IsNone => this == None;

    /// <summary>What the rules make of these events: the deliveries the taps must count, and what each operator's
    /// input topic gets (routed once for both).</summary>
    public static (long Deliveries, OperatorProgress Operators) Expected(IReadOnlyList<KeystoneEvent> events)
    {
        var byTopic = PipelineBenchmark.ExpectedByTopic(events);
        return (byTopic.Values.Sum(), new(byTopic.GetValueOrDefault(Keystone.Aggregation.AggregationTopics.Input),
            byTopic.GetValueOrDefault(Keystone.Graph.GraphTopics.Input),
            byTopic.GetValueOrDefault(Keystone.Ads.AdTopics.Input)));
    }

    public static async Task<OperatorProgress> Read(BenchCluster cluster)
    {
        var query = cluster.Query;
        var activity = await query.GetOperatorsAsync();
        var graph = await query.GetGraphOperatorsAsync();
        var ads = await query.GetAdsOperatorsAsync();
        return new(activity.Sum(o => o.Events), graph.Sum(o => o.Events), ads.Sum(o => o.Events + o.Duplicates));
    }

    /// <summary>Waits until the operators have reached <paramref name="target"/>; how long that took.</summary>
    public static async Task<TimeSpan> WaitFor(BenchCluster cluster, string name, OperatorProgress target)
    {
        var clock = Stopwatch.StartNew();
        var lastProgress = TimeSpan.Zero;
        while (true)
        {
            var now = await Read(cluster);
            if (now.Reached(target)) return clock.Elapsed;
            if (clock.Elapsed - lastProgress > TimeSpan.FromSeconds(5))
            {
                lastProgress = clock.Elapsed;
                Console.WriteLine($"    ... {name}: operators behind the taps: activity {now.Activity:N0} of {target.Activity:N0}, graph {now.Graph:N0} of {target.Graph:N0}, ads {now.Ads:N0} of {target.Ads:N0}");
            }
            if (clock.Elapsed > TimeSpan.FromMinutes(10))
                throw new TimeoutException($"{name}: the operators did not apply every event within 10 minutes of the taps: activity {now.Activity} of {target.Activity}, graph {now.Graph} of {target.Graph}, ads {now.Ads} of {target.Ads}");
            await Task.Delay(50);
        }
    }
}
