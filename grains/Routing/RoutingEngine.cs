using Keystone.Events;

namespace Keystone.Routing;

/// <summary>The events bound for one topic, in arrival order, with each one's index in the routed input.</summary>
public sealed class TopicOutput(string topic, Priority priority)
{
    public string Topic { get; } = topic;
    public Priority Priority { get; internal set; } = priority;
    public List<KeystoneEvent> Events { get; } = [];

    /// <summary>Where each event came from in the input; an output that is the same instance as its input was not transformed.</summary>
    public List<int> Indexes { get; } = [];
}

/// <summary>What routing made of a batch.</summary>
public sealed class RoutedBatch
{
    public Dictionary<string, TopicOutput> Topics { get; } = new(StringComparer.Ordinal);
    public List<KeystoneEvent> Unrouted { get; } = [];
    public List<int> UnroutedIndexes { get; } = [];

    // A router routes batch after batch into the same instance: the topic lists keep their capacity, so routing stops
    // growing a list per topic per batch (arrays of events and indexes were 2 % of the pipeline's bytes).
    private Dictionary<string, TopicOutput>? _spare;

    internal void Reset()
    {
        foreach (var (topic, output) in Topics) (_spare ??= new(StringComparer.Ordinal))[topic] = output;
        Topics.Clear();
        Unrouted.Clear();
        UnroutedIndexes.Clear();
        Filtered = 0;
        Deliveries = 0;
    }

    internal TopicOutput Output(string topic, Priority priority)
    {
        if (_spare is not null && _spare.Remove(topic, out var output))
        {
            output.Events.Clear();
            output.Indexes.Clear();
            output.Priority = priority;
        }
        else output = new TopicOutput(topic, priority);
        Topics[topic] = output;
        return output;
    }

    /// <summary>(event, destination) pairs that a filter transform held back.</summary>
    public int Filtered { get; internal set; }

    /// <summary>Events delivered to topics, counting each (event, topic) once.</summary>
    public int Deliveries { get; internal set; }

    /// <summary>Topics in the order they are appended: HIGH first, then NORMAL, then LOW.</summary>
    public IEnumerable<IGrouping<Priority, TopicOutput>> ByPriority =>
        Topics.Values.GroupBy(t => t.Priority).OrderBy(g => g.Key);
}

/// <summary>One destination's outcome for one event, for dry runs and explanations.</summary>
public sealed record RouteTrace(string Rule, string Topic, Priority Priority, KeystoneEvent? Output);

/// <summary>
/// Applies a rule set: every enabled rule whose condition matches contributes its destinations, so one event fans
/// out to N topics. An event reaches a given topic at most once even when several rules name it (the first rule
/// in file order wins, with its transforms). Pure: no I/O, no clock, no grains.
/// </summary>
public sealed class RoutingEngine(RuleSet rules)
{
    public RuleSet Rules { get; } = rules;

    /// <param name="into">Where to put the result, reusing its lists (a router's own instance: what was in it is gone); a new one when null.</param>
    public RoutedBatch Route(IReadOnlyList<KeystoneEvent> events, int partition, DateTimeOffset now, RoutedBatch? into = null)
    {
        var result = into ?? new RoutedBatch();
        result.Reset();
        var seenTopics = new HashSet<string>(StringComparer.Ordinal);
        var rules = Rules.RuleArray;
        for (var n = 0; n < events.Count; n++)
        {
            var e = events[n];
            seenTopics.Clear();
            var matched = false;
            for (var r = 0; r < rules.Length; r++)
            {
                var rule = rules[r];
                if (!rule.Enabled || !rule.Condition.Matches(e)) continue;
                matched = true;
                var destinations = rule.DestinationArray;
                for (var d = 0; d < destinations.Length; d++)
                {
                    var destination = destinations[d];
                    var topic = destination.ResolveTopic(e);
                    if (!seenTopics.Add(topic)) continue;
                    var output = Transform(e, rule, destination, topic, partition, now);
                    if (output is null)
                    {
                        result.Filtered++;
                        continue;
                    }
                    if (!result.Topics.TryGetValue(topic, out var bucket))
                        bucket = result.Output(topic, destination.Priority);
                    else if (destination.Priority < bucket.Priority)
                        bucket.Priority = destination.Priority;
                    bucket.Events.Add(output);
                    bucket.Indexes.Add(n);
                    result.Deliveries++;
                }
            }
            if (!matched)
            {
                result.Unrouted.Add(e);
                result.UnroutedIndexes.Add(n);
            }
        }
        return result;
    }

    /// <summary>Every destination an event would reach, with the transformed output (null when filtered), without delivering anything.</summary>
    public IReadOnlyList<RouteTrace> Explain(KeystoneEvent e, int partition, DateTimeOffset now)
    {
        var traces = new List<RouteTrace>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rule in Rules.Rules)
        {
            if (!rule.Enabled || !rule.Condition.Matches(e)) continue;
            foreach (var destination in rule.Destinations)
            {
                var topic = destination.ResolveTopic(e);
                if (!seen.Add(topic)) continue;
                traces.Add(new RouteTrace(rule.Name, topic, destination.Priority, Transform(e, rule, destination, topic, partition, now)));
            }
        }
        return traces;
    }

    private static KeystoneEvent? Transform(KeystoneEvent e, RoutingRule rule, RouteDestination destination, string topic, int partition, DateTimeOffset now)
    {
        var transforms = destination.TransformArray;
        if (transforms.Length == 0) return e;
        var context = new RouteContext(rule.Name, topic, partition, now);
        var current = e;
        for (var i = 0; i < transforms.Length; i++)
        {
            current = transforms[i].Apply(current, context);
            if (current is null) return null;
        }
        return current;
    }
}
