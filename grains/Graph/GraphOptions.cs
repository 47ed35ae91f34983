using System.ComponentModel.DataAnnotations;
using Keystone.Topics;

namespace Keystone.Graph;

/// <summary>The real-time graph: topics, checkpoints, bounds of hot nodes and of traversals. Section <c>Keystone:Graph</c>.</summary>
public sealed class GraphOptions
{
    public const string Section = "Keystone:Graph";

    /// <summary>Where every created or changed edge and node is published.</summary>
    public string ChangesTopic { get; set; } = "graph-changes";

    /// <summary>Barrier period. Nodes write their state in bulk at a barrier (snapshot buckets: many per request), so
    /// the period is set by recovery: the fronting log is covered up to the last barrier every consumer completed, and
    /// a restart replays what lies past it before new events are routed. Measured with a kill -9 at 10,000 events/s
    /// just before a barrier: new events counted again 52 s after the kill at 5 minutes, 16 s at 1 minute (the
    /// recovery benchmark). Nodes also keep their event ids until a barrier.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Reverse entries per sealed page. A node keeps at most one unsealed page in its state; full pages
    /// are written once to their own blob and never rewritten.</summary>
    [Range(16, 100_000)]
    public int PageSize { get; set; } = 1_000;

    /// <summary>How long a node remembers event ids it applied (a producer's retries and a crash replay come within it).</summary>
    public TimeSpan DedupeHorizon { get; set; } = TimeSpan.FromMinutes(10);

    [Range(16, 10_000_000)]
    public int DedupeCapacity { get; set; } = 4_096;

    /// <summary>A new WATCHES edge is paired with the user's this many most recent other titles for co-watch counts.</summary>
    [Range(0, 1_000)]
    public int CoWatchPartners { get; set; } = 20;

    /// <summary>Entries a derived ranking keeps (co-watched titles per video, titles per genre, played titles per profile).</summary>
    [Range(8, 1_000_000)]
    public int RankingCapacity { get; set; } = 500;

    /// <summary>Traversals follow at most this many edges out of each node they expand.</summary>
    [Range(1, 10_000)]
    public int TraversalFanOut { get; set; } = 50;

    /// <summary>Largest <c>limit</c> a query may ask for.</summary>
    [Range(1, 100_000)]
    public int MaxLimit { get; set; } = 1_000;

    [Range(1, 10_000)]
    public int DispatchConcurrency { get; set; } = 256;

    /// <summary>State writes a checkpoint keeps in flight at once. The snapshot buckets coalesce what arrives together
    /// (one storage request per bucket), so 64 still makes groups of a few per bucket; more in flight makes a checkpoint
    /// shorter but holds up the deliveries behind it: at 10,000 events/s, publish → visible p99 was 2.2 s with 2,000 in
    /// flight, 1.1 s with 256, 0.43–0.61 s with 64 and 0.29–0.42 s with 16. Fewer in flight also means smaller groups:
    /// with 16 the quick start made 2.4 times the storage requests (0.147 per event instead of 0.061), and checkpoints
    /// of 16,700 entities took about 25 s instead of 12 (docs/performance.md).</summary>
    [Range(1, 10_000)]
    public int CheckpointConcurrency { get; set; } = 64;

    public IEnumerable<string> Problems()
    {
        if (CheckpointInterval < TimeSpan.FromMilliseconds(100)) yield return $"{Section}:CheckpointInterval must be at least 100 ms.";
        if (DedupeHorizon < CheckpointInterval) yield return $"{Section}:DedupeHorizon must be at least CheckpointInterval (a crash replays up to one interval).";
        if (!StreamNames.IsValidTopicName(ChangesTopic)) yield return $"{Section}:ChangesTopic '{ChangesTopic}' is not a valid topic name.";
    }
}
