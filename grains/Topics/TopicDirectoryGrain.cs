using Keystone.Pipeline;
using Keystone.Routing;

namespace Keystone.Topics;

/// <summary>
/// Knows every topic: those the current rules name statically, plus any a router has written to (dynamic topics,
/// and topics of rules since removed). In memory: routers re-register on their next activation.
/// </summary>
public sealed class TopicDirectoryGrain(RoutingRulesProvider rules) : Grain, ITopicDirectoryGrain
{
    private readonly Dictionary<string, string?> _seen = new(StringComparer.Ordinal);

    public Task Register(string topic, string? priority)
    {
        if (!_seen.TryGetValue(topic, out var known) || known is null) _seen[topic] = priority;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyDictionary<string, string?>> GetTopics()
    {
        var result = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (topic, priority) in rules.Current.Rules.StaticTopics) result[topic] = priority.ToString().ToUpperInvariant();
        foreach (var (topic, priority) in _seen) result.TryAdd(topic, priority);
        result.TryAdd(StreamNames.Unrouted, null);
        return Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?>(result));
    }
}
