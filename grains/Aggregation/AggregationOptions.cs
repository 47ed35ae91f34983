using System.ComponentModel.DataAnnotations;

namespace Keystone.Aggregation;

/// <summary>Windowing, watermarks and checkpoints of the real-time aggregations. Section <c>Keystone:Aggregation</c>.</summary>
public sealed class AggregationOptions
{
    public const string Section = "Keystone:Aggregation";

    public string StatsTopic { get; set; } = "user-activity-stats";
    public string TriggerTopic { get; set; } = "recommendation-triggers";
    public string LateTopic { get; set; } = "late-events";

    public TimeSpan WindowSize { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan WindowOffset { get; set; } = TimeSpan.Zero;

    /// <summary>Bounded out-of-orderness: watermark = max event time seen − this.</summary>
    public TimeSpan OutOfOrderness { get; set; } = TimeSpan.FromSeconds(5);

    public TimeSpan AllowedLateness { get; set; } = TimeSpan.Zero;

    /// <summary>A partition silent this long (processing time) stops holding the combined watermark back.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan SessionGap { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Recent windows each user, video and profile keeps for queries.</summary>
    [Range(1, 10_000)]
    public int HistoryWindows { get; set; } = 12;

    /// <summary>How often operators checkpoint: entity grains write their state, and the write-ahead log is truncated.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Extra time event ids are remembered beyond window + lateness + two checkpoint intervals.</summary>
    public TimeSpan DedupeMargin { get; set; } = TimeSpan.FromMinutes(1);

    [Range(16, 10_000_000)]
    public int UserDedupeCapacity { get; set; } = 4_096;

    [Range(16, 10_000_000)]
    public int VideoDedupeCapacity { get; set; } = 16_384;

    /// <summary>Half-life of genre affinity: watch time this old counts half.</summary>
    public TimeSpan AffinityHalfLife { get; set; } = TimeSpan.FromDays(7);

    /// <summary>State writes a checkpoint keeps in flight at once. The snapshot buckets coalesce what arrives together
    /// (one storage request per bucket), so 64 still makes groups of a few per bucket; more in flight makes a checkpoint
    /// shorter but holds up the deliveries behind it: at 10,000 events/s, publish → visible p99 was 2.2 s with 2,000 in
    /// flight, 1.1 s with 256, 0.43–0.61 s with 64 and 0.29–0.42 s with 16. Fewer in flight also means smaller groups:
    /// with 16 the quick start made 2.4 times the storage requests (0.147 per event instead of 0.061), and checkpoints
    /// of 16,700 entities took about 25 s instead of 12 (docs/performance.md). Per operator, so a checkpoint keeps
    /// <c>Keystone:Ingest:Partitions</c> times this in flight: with 4 partitions instead of 8 the quick start's groups
    /// are smaller (0.063 requests per event against 0.038), and 128 would win them back at the cost of the tail at
    /// 10,000 events/s (stop 52).</summary>
    [Range(1, 10_000)]
    public int CheckpointConcurrency { get; set; } = 64;

    /// <summary>Grain calls an operator keeps in flight at once when dispatching a delivery.</summary>
    [Range(1, 10_000)]
    public int DispatchConcurrency { get; set; } = 256;

    /// <summary>
    /// How long a user, video or profile grain stays in memory as an activation without a call (Orleans' collection
    /// age for these types). An idle entity then writes its state if anything changed and leaves the activation table;
    /// its snapshot bucket keeps its serialized state in memory (<c>Keystone:Storage:SnapshotWarmMegabytes</c>), and the
    /// next event or query reactivates it from there without a storage request. An active user holds about 6.4 KB, an
    /// idle one about 1.5 KB (docs/performance.md). At least twice <see cref="CheckpointInterval"/>, so that a busy
    /// entity is checkpointed by its operator, not by its own deactivation. Unset: 5 minutes, or twice the checkpoint
    /// interval if longer.
    /// </summary>
    public TimeSpan? IdleEntityLifetime { get; set; }

    public static readonly TimeSpan DefaultEntityLifetime = TimeSpan.FromMinutes(5);

    public TimeSpan EntityLifetime => IdleEntityLifetime ?? TimeSpan.FromTicks(Math.Max(DefaultEntityLifetime.Ticks, (CheckpointInterval + CheckpointInterval).Ticks));

    /// <summary>How long an event id is remembered: at least window + lateness + margin, and two checkpoints (the most a replay can repeat).</summary>
    public TimeSpan DedupeHorizon => WindowSize + AllowedLateness + DedupeMargin + CheckpointInterval + CheckpointInterval;

    public TumblingWindows Windows() => new(WindowSize, WindowOffset);

    public IEnumerable<string> Problems()
    {
        if (WindowSize <= TimeSpan.Zero) yield return $"{Section}:WindowSize must be positive.";
        if (WindowOffset < TimeSpan.Zero || WindowOffset >= WindowSize) yield return $"{Section}:WindowOffset must be at least 0 and less than WindowSize.";
        if (OutOfOrderness < TimeSpan.Zero) yield return $"{Section}:OutOfOrderness must not be negative.";
        if (AllowedLateness < TimeSpan.Zero) yield return $"{Section}:AllowedLateness must not be negative.";
        if (IdleTimeout <= TimeSpan.Zero) yield return $"{Section}:IdleTimeout must be positive.";
        if (SessionGap <= TimeSpan.Zero) yield return $"{Section}:SessionGap must be positive.";
        if (CheckpointInterval < TimeSpan.FromMilliseconds(100)) yield return $"{Section}:CheckpointInterval must be at least 100 ms.";
        if (IdleEntityLifetime is { } lifetime && lifetime < CheckpointInterval + CheckpointInterval)
            yield return $"{Section}:IdleEntityLifetime ({lifetime}) must be at least twice CheckpointInterval ({CheckpointInterval}): an entity idle that soon would leave memory between its operator's checkpoints, and each return would replay the log.";
        if (IdleEntityLifetime < TimeSpan.FromSeconds(2)) yield return $"{Section}:IdleEntityLifetime must be at least 2 s.";
        if (AffinityHalfLife <= TimeSpan.Zero) yield return $"{Section}:AffinityHalfLife must be positive.";
        foreach (var (name, topic) in new[] { ("StatsTopic", StatsTopic), ("TriggerTopic", TriggerTopic), ("LateTopic", LateTopic) })
            if (!Topics.StreamNames.IsValidTopicName(topic)) yield return $"{Section}:{name}: '{topic}' is not a valid topic name.";
    }
}
