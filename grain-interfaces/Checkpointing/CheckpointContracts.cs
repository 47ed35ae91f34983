using Keystone.Ingest;
using Orleans.Concurrency;

namespace Keystone.Checkpointing;

/// <summary>
/// The single writer of one partition's fronting log (key: the partition). Appends from concurrent ingest requests are
/// group-committed: one storage write for all that arrived while the previous write was under way.
/// </summary>
public interface IFrontingPartitionGrain : IGrainWithIntegerKey
{
    /// <summary>Makes the messages durable in the log, then hands them to the partition's router. Returns once both are done.</summary>
    Task Append(EventBatch[] messages);

    /// <summary>The last position written.</summary>
    Task<long> Head();

    /// <summary>Lets the log drop what lies wholly before <paramref name="position"/> (a completed checkpoint covers it).</summary>
    Task SealBefore(long position);

    /// <summary>Where the lake is the sealed log: the lake blobs of this partition of the last two days of event time,
    /// with their event counts.</summary>
    Task<IReadOnlyList<Keystone.Archive.ArchiveBlob>> GetLakeBlobs();

    /// <summary>Where the lake is the sealed log: closes the open segment and writes every closed one to the lake (a
    /// stopping silo calls it; otherwise a timer does, every <c>Keystone:Archive:SealInterval</c>).</summary>
    Task FlushToLake();
}

/// <summary>
/// Starts a checkpoint every <c>Keystone:Checkpoints:Interval</c>: each router puts barrier n into every checkpointed
/// topic after what it has routed; each stateful consumer acknowledges barrier n once what came before it is durable;
/// when all have, the router's fronting position is covered and recovery never needs to replay before it.
/// </summary>
public interface ICheckpointCoordinatorGrain : IGrainWithIntegerKey
{
    /// <summary>Activates the coordinator (called at silo start; it then runs on its own timer). Fails when the stored
    /// checkpoints were written with another partition count, which stops the silo's start.</summary>
    Task Start();

    /// <summary>A consumer has made durable everything its input carried before barrier <paramref name="checkpoint"/>.</summary>
    [OneWay]
    Task Ack(long checkpoint, int partition, string consumer);

    /// <summary>The fronting position of <paramref name="partition"/> covered by the last completed checkpoint.</summary>
    Task<long> Covered(int partition);

    Task<CheckpointStatus> GetStatus();
}

/// <summary>Where checkpointing stands: the newest checkpoint started and the newest completed for every partition, and per partition the covered position.</summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointStatus(
    [property: Id(0)] long Started,
    [property: Id(1)] long Completed,
    [property: Id(2)] DateTimeOffset? CompletedAt,
    [property: Id(3)] long[] Covered,
    [property: Id(4)] IReadOnlyList<string> Consumers);

/// <summary>
/// A stateful operator whose entity grains hold, in memory, what they applied since their last checkpoint. When a
/// silo leaves the cluster those on it lose that; the operator replays from its last completed checkpoint, so they
/// (and any entity re-activated elsewhere) are whole again without waiting for the operator's next checkpoint.
/// </summary>
public interface IEntityOperatorGrain : IGrainWithStringKey
{
    /// <summary>Silo <paramref name="silo"/> left the cluster (declared dead, or stopped). Returns at once; the
    /// replay runs in the background, interleaved with deliveries.</summary>
    [AlwaysInterleave]
    Task SiloLeft(string silo);
}

/// <summary>A file of a committed export: one checkpoint of one partition.</summary>
[GenerateSerializer, Immutable]
public sealed record ExportFile(
    [property: Id(0)] string Name,
    [property: Id(1)] string Sink,
    [property: Id(2)] int Partition,
    [property: Id(3)] DateTimeOffset CommittedAt,
    [property: Id(4)] int Records,
    [property: Id(5)] long Bytes);

/// <summary>Reads of the committed exports (a stateless worker over blob storage), for the REST gateway.</summary>
public interface IExportReaderGrain : IGrainWithIntegerKey
{
    Task<List<ExportFile>> List(string sink, DateTimeOffset from, DateTimeOffset to, int? partition, int limit);

    /// <summary>A file's content; null when there is no such file.</summary>
    Task<byte[]?> Read(string name);
}
