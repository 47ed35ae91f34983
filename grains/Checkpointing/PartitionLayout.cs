namespace Keystone.Checkpointing;

/// <summary>
/// The partition count is part of what the checkpoints store. Events are spread over the partitions by
/// <c>user_id</c>; each partition's fronting log position is covered per partition, and the operators keep their
/// state per partition. A silo started with another count would leave the events that no checkpoint covered yet in
/// the logs of partitions it no longer has (accepted with a 202 and never processed), and would read the others'
/// positions in another layout. So it refuses to start, as Kafka Streams needs a reset when its input's partition count
/// changes.
/// </summary>
public static class PartitionLayout
{
    /// <summary>Why a silo configured with <paramref name="configured"/> partitions cannot use checkpoints written with
    /// <paramref name="stored"/> (0: none written yet); null when it can.</summary>
    public static string? Problem(int stored, int configured) =>
        stored == 0 || stored == configured
            ? null
            : $"The checkpoints in this silo's storage were written with Keystone:Ingest:Partitions = {stored}, and it is configured with {configured}. " +
              $"Each partition's fronting log and checkpoint position belong to the layout they were written in: with another count, the events no checkpoint covered yet " +
              $"would stay in the logs of partitions that no longer exist. Set Keystone:Ingest:Partitions to {stored}, or start from empty state " +
              $"(another Keystone:Storage:Container and fronting log; for the quick start, delete silo/.local).";
}
