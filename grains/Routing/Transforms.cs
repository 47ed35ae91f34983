using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Keystone.Events;
using Keystone.Schemas;

namespace Keystone.Routing;

/// <summary>Facts about the routing decision that transforms may record.</summary>
public readonly record struct RouteContext(string RuleName, string Topic, int Partition, DateTimeOffset RoutedAt);

/// <summary>
/// A per-destination rewrite of an event. Returns the event to deliver (the same instance when unchanged) or
/// null when a filter keeps it from this destination.
/// </summary>
public interface IEventTransform
{
    string Name { get; }
    KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context);
}

public enum MaskMode
{
    /// <summary>A keyed SHA-256 of the value: stable, so masked values still join and count.</summary>
    Hash,

    /// <summary>A fixed mask that keeps nothing of the value.</summary>
    Mask,
}

/// <summary>
/// Replaces PII payload fields. Which fields: the transform's own list when given, else the configured defaults
/// plus every field the event's schema marks <c>"x-pii": true</c>.
/// </summary>
public sealed class MaskPiiTransform : IEventTransform
{
    public const string TransformName = "mask-pii-fields";
    private readonly IReadOnlySet<string>? _explicitFields;
    private readonly IReadOnlySet<string> _defaultFields;
    private readonly MaskMode _mode;
    private readonly byte[] _key;
    private readonly SchemaRegistry _schemas;
    private readonly ConcurrentDictionary<(string, string), HashSet<string>> _fieldsByType = new();

    public MaskPiiTransform(IEnumerable<string>? explicitFields, IEnumerable<string> defaultFields, MaskMode mode, string salt, SchemaRegistry schemas)
    {
        _explicitFields = explicitFields?.ToHashSet(StringComparer.Ordinal);
        _defaultFields = defaultFields.ToHashSet(StringComparer.Ordinal);
        _mode = mode;
        _key = Encoding.UTF8.GetBytes(salt);
        _schemas = schemas;
    }

    public string Name => TransformName;

    public IReadOnlySet<string> FieldsFor(KeystoneEvent e)
    {
        if (_explicitFields is not null) return _explicitFields;
        return _fieldsByType.GetOrAdd((e.EventType, e.Version), key =>
        {
            var set = new HashSet<string>(_defaultFields, StringComparer.Ordinal);
            if (_schemas.TryGet(key.Item1, key.Item2, out var schema)) set.UnionWith(schema.PiiFields);
            return set;
        });
    }

    public KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context)
    {
        var fields = FieldsFor(e);
        if (fields.Count == 0) return e;
        var payload = e.Payload.Rewrite((name, value) =>
            fields.Contains(name) && value is not null ? PayloadEdit.Replace(MaskValue(value)) : PayloadEdit.Keep);
        return ReferenceEquals(payload, e.Payload) ? e : e with { Payload = payload };
    }

    public string MaskValue(string value)
    {
        if (_mode == MaskMode.Mask) return "***";
        var mac = HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(value));
        return "sha256:" + Convert.ToHexStringLower(mac, 0, 8);
    }
}

/// <summary>Adds routing facts (rule, time, partition, topic) and any fixed entries to the metadata.</summary>
public sealed class EnrichTransform(IReadOnlyDictionary<string, string> extra) : IEventTransform
{
    public const string TransformName = "enrich";

    public string Name => TransformName;

    // One routing call stamps every event with the same time and partition: their text is made once per call, not
    // once per event (a reference swap keeps it safe for routers on other threads).
    private sealed record Stamp(DateTimeOffset At, string AtText, int Partition, string PartitionText);
    private Stamp? _stamp;
    private readonly KeyValuePair<string, string>[] _extra = [.. extra];

    public KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context)
    {
        var stamp = _stamp;
        if (stamp is null || !stamp.At.EqualsExact(context.RoutedAt) || stamp.Partition != context.Partition)
            _stamp = stamp = new Stamp(context.RoutedAt, EventJson.FormatTimestamp(context.RoutedAt),
                context.Partition, context.Partition.ToString(CultureInfo.InvariantCulture));
        var metadata = e.Metadata.With(
            new("routed_by", context.RuleName),
            new("routed_at", stamp.AtText),
            new("partition", stamp.PartitionText),
            new KeyValuePair<string, string>("topic", context.Topic));
        if (_extra.Length > 0) metadata = metadata.With(_extra);
        return e with { Metadata = metadata };
    }
}

/// <summary>Keeps only the listed payload fields.</summary>
public sealed class ProjectTransform(IReadOnlyCollection<string> fields) : IEventTransform
{
    public const string TransformName = "project";
    private readonly HashSet<string> _fields = fields.ToHashSet(StringComparer.Ordinal);

    public string Name => TransformName;

    public KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context)
    {
        var payload = e.Payload.Rewrite((name, _) => _fields.Contains(name) ? PayloadEdit.Keep : PayloadEdit.Drop);
        return ReferenceEquals(payload, e.Payload) ? e : e with { Payload = payload };
    }
}

/// <summary>Removes the listed payload fields.</summary>
public sealed class DropFieldsTransform(IReadOnlyCollection<string> fields) : IEventTransform
{
    public const string TransformName = "drop";
    private readonly HashSet<string> _fields = fields.ToHashSet(StringComparer.Ordinal);

    public string Name => TransformName;

    public KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context)
    {
        var payload = e.Payload.Rewrite((name, _) => _fields.Contains(name) ? PayloadEdit.Drop : PayloadEdit.Keep);
        return ReferenceEquals(payload, e.Payload) ? e : e with { Payload = payload };
    }
}

/// <summary>Lets an event through to this destination only when every test matches (same tests as rule conditions, plus payload fields).</summary>
public sealed class FilterTransform(RuleCondition condition) : IEventTransform
{
    public const string TransformName = "filter";

    public RuleCondition Condition { get; } = condition;

    public string Name => TransformName;

    public KeystoneEvent? Apply(KeystoneEvent e, in RouteContext context) => Condition.Matches(e) ? e : null;
}
