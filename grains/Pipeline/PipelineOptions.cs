using System.ComponentModel.DataAnnotations;
using Keystone.Routing;

namespace Keystone.Pipeline;

/// <summary>Ingest limits and the fronting topic's partitioning. Section <c>Keystone:Ingest</c>.</summary>
public sealed class IngestOptions
{
    public const string Section = "Keystone:Ingest";

    /// <summary>
    /// Fronting partitions (P). Events are spread over them by <c>user_id</c>; one router, and one window, graph and ad
    /// operator, per partition. More partitions spread the work over more silos and cores, and cut each batch into more,
    /// smaller messages and grain calls: on two cores, 4 instead of 8 cost about a fifth less CPU per event at saturation
    /// (docs/performance.md, stop 52). Fixed for the life of the stored checkpoints (see <c>PartitionLayout</c>).
    /// </summary>
    [Range(1, 1024)]
    public int Partitions { get; set; } = 4;

    /// <summary>Largest accepted event, as JSON. Keep it below the stream provider's message size.</summary>
    [Range(256, 1024 * 1024)]
    public int MaxEventBytes { get; set; } = 32 * 1024;

    /// <summary>Largest request body after decompression.</summary>
    [Range(1024, 256 * 1024 * 1024)]
    public int MaxRequestBytes { get; set; } = 16 * 1024 * 1024;

    [Range(1, 1_000_000)]
    public int MaxEventsPerRequest { get; set; } = 100_000;

    /// <summary>Events per fronting stream message. A message is one batch; large batches amortise every hop.</summary>
    [Range(1, 100_000)]
    public int MaxEventsPerStreamMessage { get; set; } = 2_000;

    /// <summary>Bytes (encoded batch form) per stream message. Providers with smaller messages lower it: Azure Queue to 40 KiB, memory streams to 512 KiB.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxBytesPerStreamMessage { get; set; } = 4 * 1024 * 1024;

    /// <summary>How far ahead of the silo's clock an event time may be (a guard for watermarks).</summary>
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How far ahead of its arrival (ingest time) an event time is believed. Beyond it, every event-time consumer
    /// uses the arrival time instead (see <see cref="ClockSkew"/>): one producer's fast clock must not make other
    /// producers' events late.
    /// </summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>Routing rules and transforms. Section <c>Keystone:Routing</c>.</summary>
public sealed class RoutingOptions
{
    public const string Section = "Keystone:Routing";

    /// <summary>The YAML (or JSON) rule file, relative to the content root.</summary>
    [Required]
    public string RulesFile { get; set; } = "routing-rules.yaml";

    /// <summary>How many recent event ids each router remembers to drop re-sent events (SDK retries, replays).</summary>
    [Range(0, 10_000_000)]
    public int DedupeWindow { get; set; } = 200_000;

    public PiiOptions Pii { get; set; } = new();

    /// <summary>How often each silo checks for a new live rule set or added schema versions.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);
}

public sealed class PiiOptions
{
    /// <summary>Payload fields masked by <c>mask-pii-fields</c> when a rule does not list its own (schemas add their <c>x-pii</c> fields).</summary>
    public List<string> Fields { get; set; } = ["email", "ip_address", "card_last4", "billing_address", "phone"];

    public MaskMode Mode { get; set; } = MaskMode.Hash;

    /// <summary>Key of the masking hash. Set it in production (environment or secret store), never in the repo.</summary>
    public string Salt { get; set; } = "";
}

/// <summary>Topic taps. Section <c>Keystone:Taps</c>.</summary>
public sealed class TapOptions
{
    public const string Section = "Keystone:Taps";

    /// <summary>Events each tap (topic partition) keeps for <c>GET /v1/topics/{name}/events</c>.</summary>
    [Range(0, 10_000)]
    public int RecentEvents { get; set; } = 100;

    /// <summary>Batch ids a tap remembers to recognise a redelivered stream message.</summary>
    [Range(16, 1_000_000)]
    public int RememberedBatches { get; set; } = 4096;
}

/// <summary>Schemas. Section <c>Keystone:Schemas</c>.</summary>
public sealed class SchemaOptions
{
    public const string Section = "Keystone:Schemas";

    /// <summary>Optional directory of extra or overriding schema files (<c>type/version.json</c>); the built-in set is always loaded.</summary>
    public string? Directory { get; set; }
}
