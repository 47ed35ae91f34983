using Keystone.Events;

namespace Keystone.Topics;

/// <summary>Stream names shared by producers and consumers.</summary>
public static class StreamNames
{
    /// <summary>The stream provider every pipeline stream lives in.</summary>
    public const string Provider = "keystone";

    /// <summary>The fronting topic: ingest appends here, routers consume it (Keystone's Kafka fronting topic).</summary>
    public const string Fronting = "keystone-fronting";

    /// <summary>
    /// Namespaces the topic taps observe: everything but the fronting topic and private streams, whose names start
    /// with '_' (a prefix routing rules cannot produce, since topic names start with a letter or digit).
    /// </summary>
    public const string TappedNamespaces = "^(?!keystone-fronting$)(?!_).+";

    /// <summary>Events that no routing rule matched: counted and kept visible, never dropped silently.</summary>
    public const string Unrouted = "keystone-unrouted";

    /// <summary>Partition streams are keyed by the partition number.</summary>
    public static string PartitionKey(int partition) => partition.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Topic names: lower-case letters, digits, '.', '-' and '_', 3 to 63 characters, starting with a letter or digit.</summary>
    public static bool IsValidTopicName(string? name) =>
        name is { Length: >= 3 and <= 63 }
        && (char.IsAsciiLetterLower(name[0]) || char.IsAsciiDigit(name[0]))
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.' or '_');
}

/// <summary>An event as a tap saw it: after routing transforms, with the moment it was delivered.</summary>
[GenerateSerializer, Immutable]
public sealed record TappedEvent(
    [property: Id(0)] long Sequence,
    [property: Id(1)] DateTimeOffset DeliveredAt,
    [property: Id(2)] int Partition,
    [property: Id(3)] KeystoneEvent Event);

/// <summary>What one tap (one partition of one topic) has seen.</summary>
[GenerateSerializer, Immutable]
public sealed record TapStats(
    [property: Id(0)] string Topic,
    [property: Id(1)] int Partition,
    [property: Id(2)] long Delivered,
    [property: Id(3)] long Duplicates,
    [property: Id(4)] DateTimeOffset? LastDeliveryAt,
    [property: Id(5)] LatencySnapshot Lag,
    [property: Id(6)] LatencySnapshot? RecentLag = null);

/// <summary>A topic summed over its partitions.</summary>
[GenerateSerializer, Immutable]
public sealed record TopicSummary(
    [property: Id(0)] string Name,
    [property: Id(1)] long Delivered,
    [property: Id(2)] long Duplicates,
    [property: Id(3)] DateTimeOffset? LastDeliveryAt,
    [property: Id(4)] LatencySnapshot Lag,
    [property: Id(5)] string? Priority,
    [property: Id(6)] LatencySnapshot? RecentLag = null);

/// <summary>
/// Observes one partition of one topic: counts what is delivered, keeps the newest N events, and measures lag
/// (delivery time minus event time) since it started and over the last minute. Keyed "topic/partition".
/// </summary>
public interface ITopicTapGrain : IGrainWithStringKey
{
    Task<TapStats> GetStats();

    /// <summary>The newest events with a sequence above <paramref name="afterSequence"/>, oldest first.</summary>
    Task<IReadOnlyList<TappedEvent>> GetRecent(int limit, long afterSequence = 0);

    /// <summary>Forgets counts and recent events (tests and benchmarks start from zero).</summary>
    Task Reset();
}

/// <summary>The topics the cluster knows: those named by routing rules plus those that have received events.</summary>
public interface ITopicDirectoryGrain : IGrainWithIntegerKey
{
    Task Register(string topic, string? priority);
    Task<IReadOnlyDictionary<string, string?>> GetTopics();
}

/// <summary>How the pipeline is set up, for clients that need to know (partition count, provider, rules).</summary>
[GenerateSerializer, Immutable]
public sealed record PipelineInfo(
    [property: Id(0)] int Partitions,
    [property: Id(1)] string StreamProvider,
    [property: Id(2)] string RulesHash,
    [property: Id(3)] string RulesOrigin,
    [property: Id(4)] int RuleCount,
    [property: Id(5)] IReadOnlyList<string> EventTypes);

/// <summary>Answers <see cref="PipelineInfo"/>; a stateless worker, so any silo answers locally.</summary>
public interface IPipelineInfoGrain : IGrainWithIntegerKey
{
    Task<PipelineInfo> GetInfo();

    /// <summary>The routing rule text in force (YAML or JSON, as loaded).</summary>
    Task<string> GetRulesText();

    Task<IReadOnlyList<Schemas.SchemaDescription>> GetSchemas();
}
