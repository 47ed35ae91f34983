using System.Text.RegularExpressions;
using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Graph;

namespace Keystone.Routing;

/// <summary>An operator that consumes one topic, and whether this deployment runs it.</summary>
public sealed record OperatorInput(string Topic, string Operator, bool Enabled = true);

/// <summary>
/// The contract between the routing rules and the operators: the operators subscribe to fixed topic names, the rules
/// produce topic names from text, and nothing else joins the two. A rule set under which no enabled rule can reach an
/// enabled operator's input would leave that operator idle without a word; this check names the topic and the operator.
/// </summary>
public static class OperatorInputs
{
    public static IReadOnlyList<OperatorInput> All(bool archiveEnabled) =>
    [
        new(AggregationTopics.Input, "the activity window operator (per-user, per-video and per-profile aggregations)"),
        new(GraphTopics.Input, "the real-time graph operator"),
        new(AdTopics.Input, "the ad campaign operator"),
        new(ArchiveTopics.Input, "the data-lake archive writer", archiveEnabled),
    ];

    /// <summary>One message per enabled operator whose input topic no enabled rule routes to.</summary>
    public static IReadOnlyList<string> Unfed(RuleSet rules, IEnumerable<OperatorInput> inputs) =>
        [.. inputs.Where(i => i.Enabled && !rules.Rules.Any(r => r.Enabled && r.Destinations.Any(d => CanReach(d, i.Topic))))
            .Select(i => $"no enabled rule routes to topic '{i.Topic}', the input of {i.Operator}: it would receive no events")];

    // A templated topic ({category}-events) may resolve to the input: each placeholder stands for any text.
    private static bool CanReach(RouteDestination destination, string topic)
    {
        if (!destination.IsDynamic) return destination.Topic == topic;
        var pattern = "^" + Regex.Replace(Regex.Escape(destination.Topic), @"\\\{[a-z_]+}", ".+") + "$";
        return Regex.IsMatch(topic, pattern);
    }
}
