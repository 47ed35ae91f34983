using Orleans.Concurrency;

namespace Keystone.Routing;

/// <summary>What one router (one fronting partition) has done since it was activated; <c>Position</c>: how far it has routed the
/// fronting log; <c>Replayed</c>: events it read back from the log (after a restart, or to fill a gap).</summary>
[GenerateSerializer, Immutable]
public sealed record RouterStats(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Batches,
    [property: Id(2)] long Events,
    [property: Id(3)] long Duplicates,
    [property: Id(4)] long Deliveries,
    [property: Id(5)] long Unrouted,
    [property: Id(6)] long Filtered,
    [property: Id(7)] string RulesHash,
    [property: Id(8)] long Position = 0,
    [property: Id(9)] long Replayed = 0);

/// <summary>
/// Consumes one partition of the fronting topic, applies the routing rules, and appends the results to target
/// topics (one stream message per topic per input batch), keeping the partition. Keyed by the partition number.
/// </summary>
public interface IRouterGrain : IGrainWithStringKey
{
    Task<RouterStats> GetStats();

    /// <summary>Puts barrier <paramref name="checkpoint"/> into every checkpointed topic after everything routed so far
    /// and returns the fronting position it follows.</summary>
    Task<long> Barrier(long checkpoint);

    /// <summary>Routes again what the fronting log holds past the last completed checkpoint: a consumer whose entity
    /// grains lost their memory asks for it (consumers drop what they already have). Returns the newest checkpoint
    /// barrier put into the topics before the replay: a consumer must not acknowledge that barrier, or an older one,
    /// for the replayed events follow it.</summary>
    /// <param name="rewindsSeen">What <see cref="Rewinds"/> answered once the consumer was ready for the replay (had
    /// forgotten what it would otherwise drop): a replay started since then serves it too, and none is started again.
    /// The three entity operators of a partition ask at once when a silo leaves; they get one replay.</param>
    Task<long> Rewind(long rewindsSeen);

    /// <summary>How many replays this activation has started.</summary>
    [AlwaysInterleave]
    Task<long> Rewinds();
}
