using System.Security.Cryptography;
using System.Text;
using Keystone.Events;

namespace Keystone.Routing;

/// <summary>Delivery priority of a destination: HIGH topics are appended first, LOW last.</summary>
public enum Priority
{
    High = 0,
    Normal = 1,
    Low = 2,
}

/// <summary>The attributes a condition or filter can test, and how each is read from an event.</summary>
public static class EventAttributes
{
    public const string EventType = "event-type";
    public const string Region = "region";
    public const string Service = "service";
    public const string DeviceType = "device-type";
    public const string UserSegment = "user-segment";
    public const string Version = "version";

    public static readonly IReadOnlyList<string> All = [EventType, Region, Service, DeviceType, UserSegment, Version];

    /// <summary>The user segment comes from <c>metadata.user_segment</c>, else from the payload's <c>user_segment</c> field.</summary>
    public static string? SegmentOf(KeystoneEvent e) => e.Metadata.Get("user_segment") ?? e.Payload.GetString("user_segment");

    /// <summary>Reads an attribute; <c>payload.&lt;field&gt;</c> reads a payload field as text.</summary>
    public static string? Read(KeystoneEvent e, string attribute) => attribute switch
    {
        EventType => e.EventType,
        Region => e.Source.Region,
        Service => e.Source.Service,
        DeviceType => e.Source.DeviceType,
        UserSegment => SegmentOf(e),
        Version => e.Version,
        _ when attribute.StartsWith("payload.", StringComparison.Ordinal) => e.Payload.GetText(attribute["payload.".Length..]),
        _ when attribute.StartsWith("metadata.", StringComparison.Ordinal) => e.Metadata.Get(attribute["metadata.".Length..]),
        _ => null,
    };
}

/// <summary>
/// A conjunction of attribute tests; each test passes when any of its globs matches. An empty condition (the YAML
/// <c>"*"</c>) matches every event. A missing attribute (no region, say) only matches the glob <c>*</c>.
/// </summary>
public sealed class RuleCondition
{
    public static readonly RuleCondition MatchAll = new([]);

    // Arrays, not lists: this runs for every rule of every event, and a list's foreach boxes its enumerator here.
    private readonly AttributeTest[] _tests;

    public RuleCondition(IReadOnlyList<AttributeTest> tests) => _tests = [.. tests];

    public IReadOnlyList<AttributeTest> Tests => _tests;

    public bool IsMatchAll => _tests.Length == 0;

    public bool Matches(KeystoneEvent e)
    {
        var tests = _tests;
        for (var i = 0; i < tests.Length; i++)
            if (!tests[i].Matches(e)) return false;
        return true;
    }

    public override string ToString() => IsMatchAll ? "*" : string.Join(", ", Tests);
}

public sealed class AttributeTest(string attribute, IReadOnlyList<Glob> globs)
{
    private readonly Glob[] _globs = [.. globs];

    public string Attribute { get; } = attribute;
    public IReadOnlyList<Glob> Globs => _globs;

    public bool Matches(KeystoneEvent e)
    {
        var value = EventAttributes.Read(e, Attribute);
        var globs = _globs;
        for (var i = 0; i < globs.Length; i++)
            if (globs[i].IsMatch(value)) return true;
        return false;
    }

    public override string ToString() => $"{Attribute}: {string.Join("|", Globs)}";
}

/// <summary>
/// Where a rule sends a match. The topic may be a template with placeholders resolved per event
/// ({event_type}, {category}, {region}, {service}, {device_type}, {version}), which is how dynamic topics work.
/// </summary>
public sealed class RouteDestination(string topic, Priority priority, IReadOnlyList<IEventTransform> transforms)
{
    public static readonly IReadOnlyList<string> Placeholders = ["event_type", "category", "region", "service", "device_type", "version"];

    internal readonly IEventTransform[] TransformArray = [.. transforms];

    public string Topic { get; } = topic;
    public Priority Priority { get; } = priority;
    public IReadOnlyList<IEventTransform> Transforms => TransformArray;
    public bool IsDynamic { get; } = topic.Contains('{');

    public string ResolveTopic(KeystoneEvent e)
    {
        if (!IsDynamic) return Topic;
        var sb = new StringBuilder(Topic);
        sb.Replace("{event_type}", e.EventType)
          .Replace("{category}", e.EventType.Split('.')[0])
          .Replace("{region}", e.Source.Region ?? "unknown")
          .Replace("{service}", e.Source.Service)
          .Replace("{device_type}", e.Source.DeviceType ?? "unknown")
          .Replace("{version}", e.Version);
        return Sanitize(sb.ToString());
    }

    // A resolved topic must still be a valid stream namespace, whatever the event carried.
    private static string Sanitize(string topic)
    {
        var chars = topic.ToLowerInvariant().Select(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.' or '_' ? c : '-').ToArray();
        var s = new string(chars);
        return s.Length > 63 ? s[..63] : s;
    }
}

public sealed class RoutingRule(string name, RuleCondition condition, IReadOnlyList<RouteDestination> destinations, bool enabled = true, string? description = null)
{
    internal readonly RouteDestination[] DestinationArray = [.. destinations];

    public string Name { get; } = name;
    public RuleCondition Condition { get; } = condition;
    public IReadOnlyList<RouteDestination> Destinations => DestinationArray;
    public bool Enabled { get; } = enabled;
    public string? Description { get; } = description;
}

/// <summary>A parsed, validated rule set together with the text it came from.</summary>
public sealed class RuleSet
{
    internal readonly RoutingRule[] RuleArray;

    public RuleSet(IReadOnlyList<RoutingRule> rules, string sourceText, string origin)
    {
        RuleArray = [.. rules];
        Rules = RuleArray;
        SourceText = sourceText;
        Origin = origin;
        Hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sourceText)))[..16];
    }

    public IReadOnlyList<RoutingRule> Rules { get; }
    public string SourceText { get; }
    public string Origin { get; }

    /// <summary>A short content hash, so operators can tell which rule text a router runs.</summary>
    public string Hash { get; }

    /// <summary>The statically named topics and their highest priority (dynamic topics are only known once used).</summary>
    public IReadOnlyDictionary<string, Priority> StaticTopics =>
        Rules.SelectMany(r => r.Destinations).Where(d => !d.IsDynamic)
            .GroupBy(d => d.Topic)
            .ToDictionary(g => g.Key, g => g.Min(d => d.Priority));
}
