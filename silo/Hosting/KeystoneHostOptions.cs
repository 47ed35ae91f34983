using Keystone.Storage;
using System.ComponentModel.DataAnnotations;

namespace Keystone.Silo.Hosting;

public enum HostRole
{
    /// <summary>A silo with the REST gateway and the dashboard in the same process (the default).</summary>
    Silo,

    /// <summary>Only the REST gateway, talking to a remote cluster through the Orleans client.</summary>
    Gateway,
}

public enum StreamProviderKind
{
    /// <summary>In-process queues that hand batches on by reference (the default; not durable: the fronting log is).</summary>
    Local,

    /// <summary>Orleans' memory provider: queue grains holding serialised copies (not durable either).</summary>
    Memory,
    AzureQueue,
    EventHubs,
}

public enum ClusteringMode
{
    /// <summary>One or more silos on this machine, found through a primary silo endpoint.</summary>
    Localhost,

    /// <summary>Membership in an Azure Storage table (Azurite works), for several silos and remote gateways.</summary>
    AzureTable,
}

/// <summary>Section <c>Keystone</c>: what this process is.</summary>
public sealed class KeystoneHostOptions
{
    public const string Section = "Keystone";

    public HostRole Role { get; set; } = HostRole.Silo;

    /// <summary>Serve the Orleans dashboard at <c>/dashboard</c> (it profiles every grain call).</summary>
    public bool Dashboard { get; set; } = true;
}

/// <summary>Section <c>Keystone:Storage</c>: where grain state is checkpointed.</summary>
public sealed class StorageOptions
{
    public const string Section = "Keystone:Storage";

    /// <summary>Azure Storage connection string. The default is the local emulator.</summary>
    [Required]
    public string ConnectionString { get; set; } = "UseDevelopmentStorage=true";

    /// <summary>Blob container for grain state (3-63 lower-case letters, digits and dashes).</summary>
    [Required, RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", ErrorMessage = "Container names are 3-63 lower-case letters, digits and single dashes, starting and ending with a letter or digit.")]
    public string Container { get; set; } = "keystone-state";

    /// <summary>Where grain state lives: <see cref="GrainStateStore.AzureBlob"/> (durable; the default) or
    /// <see cref="GrainStateStore.Memory"/> (the silo's memory, lost with it: for benchmarks of the grains themselves,
    /// which the emulator cannot keep up with at a million-edge scale). Logs, pages, dead letters and the archive stay in blobs.</summary>
    public GrainStateStore GrainState { get; set; } = GrainStateStore.AzureBlob;

    /// <summary>How many snapshot buckets grain state is spread over. A checkpoint writes at most one blob per bucket
    /// it touched, so fewer buckets mean fewer, larger writes; more spread the writing over more grains (and silos).</summary>
    [Range(1, 4096)]
    public int SnapshotBuckets { get; set; } = 16;

    /// <summary>Delta segments a bucket writes before it folds them into one new base (and deletes them), once they
    /// also hold as many bytes as the base; past four times this many, whatever their size. Bounds what a bucket reads
    /// when it activates (at most 1 + 4 × this many segments).</summary>
    [Range(2, 10_000)]
    public int SnapshotCompactAfter { get; set; } = SnapshotStore.DefaultCompactAfter;

    /// <summary>How long an idle snapshot bucket waits for more writes before it writes: a checkpoint's writes arrive
    /// over a few milliseconds, and waiting for them makes one request of many. Not on any event's path.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:05")]
    public TimeSpan SnapshotLinger { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Megabytes of written state the snapshot buckets of a silo keep in memory, newest first: an entity that
    /// left memory after <c>Keystone:Aggregation:IdleEntityLifetime</c> is held there as its serialized state (about
    /// 1 KB for a user, against 6 KB as an activation) and comes back without a storage request. 0 keeps none.</summary>
    [Range(0, 1_000_000)]
    public int SnapshotWarmMegabytes { get; set; } = (int)(SnapshotStore.DefaultWarmBytes >> 20);

    /// <summary>A storage request still waiting for its answer after this long is logged as a warning, once, with its
    /// operation and blob path (<c>keystone_storage_oldest_request_age_seconds</c> shows the wait meanwhile). A try is
    /// given up only after <see cref="RequestTryTimeout"/>: without this, a stalled request shows only as a timeout of
    /// whatever waited on it. Above <see cref="RequestTryTimeout"/>, nothing is ever reported.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan StallWarningAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one try of a storage request may go without an answer before the Azure SDK gives it up and
    /// tries again on a new connection (3 retries, backing off from 0.8 s). The SDK's default is 100 s per try: a
    /// connection a network fault left with no one at its other end then holds what waits on it (an append to the
    /// fronting log, a checkpoint) for minutes after the network is back. Every storage client of the silo uses it,
    /// except the lake's queries (<c>Keystone:Lake:StorageTimeout</c>) and the health check (3 s). Keep it above the
    /// slowest answer a healthy storage gives (the largest snapshot segment's upload).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan RequestTryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a storage request that failed or got no answer is sent again before its caller is told
    /// (the Azure SDK's default, 3). A caller that is told retries on its own terms: ingest answers <c>503</c>, a
    /// checkpoint is taken again at the next interval.</summary>
    [Range(0, 10)]
    public int RequestRetries { get; set; } = 3;
}

public enum GrainStateStore { AzureBlob, Memory }

/// <summary>Section <c>Keystone:Cluster</c>.</summary>
public sealed class ClusterOptions
{
    public const string Section = "Keystone:Cluster";

    public ClusteringMode Mode { get; set; } = ClusteringMode.Localhost;

    [Required, RegularExpression("^[A-Za-z0-9-]{1,63}$")]
    public string ClusterId { get; set; } = "keystone";

    [Required, RegularExpression("^[A-Za-z0-9-]{1,63}$")]
    public string ServiceId { get; set; } = "keystone";

    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Localhost clustering: the silo port of the first silo (defaults to this silo).</summary>
    public int? PrimarySiloPort { get; set; }

    /// <summary>Azure Table clustering: connection string (defaults to <c>Keystone:Storage:ConnectionString</c>).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Run under Orleans' Kubernetes hosting (<c>Microsoft.Orleans.Hosting.Kubernetes</c>): the pod name becomes the
    /// silo name, the pod IP the advertised address, ports listen on every interface, and silos watch the pods of
    /// their cluster (a pod that is gone is declared dead at once, a silo declared dead has its pod deleted). Needs
    /// <see cref="ClusteringMode.AzureTable"/> and the environment the manifests in infra/kubernetes set (POD_NAME,
    /// POD_NAMESPACE, POD_IP, ORLEANS_SERVICE_ID, ORLEANS_CLUSTER_ID). Off by default.
    /// </summary>
    public bool Kubernetes { get; set; }

    /// <summary>Gateway role with localhost clustering: the silos' gateway ports to connect to.</summary>
    public List<int> Gateways { get; set; } = [];

    /// <summary>
    /// Grain addresses a silo caches (Orleans' <c>GrainDirectoryOptions.CacheSize</c>); past it the least recently used
    /// go and are looked up again when called. Orleans' default is 1,000,000, and its cache sizes its hash table for
    /// that many at start: an 8 MB array per silo, which Orleans' own cache-size gauge walks whole every time it is
    /// read, and the dashboard reads it every second (a tenth of the quick start silo's CPU, docs/performance.md,
    /// stop 56). A silo here calls a few tens of thousands of grains (users, titles, profiles, campaigns, vertices);
    /// raise it for a cluster whose silos each call more.
    /// </summary>
    [Range(1_000, 10_000_000)]
    public int DirectoryCacheSize { get; set; } = 100_000;
}

/// <summary>Section <c>Keystone:Streaming</c>: which stream provider carries the topics.</summary>
public sealed class StreamingOptions
{
    public const string Section = "Keystone:Streaming";

    public StreamProviderKind Provider { get; set; } = StreamProviderKind.Local;

    /// <summary>How often pulling agents poll their queues. Orleans' default of 100 ms adds that much latency per hop.
    /// The <see cref="StreamProviderKind.Local"/> provider's queues are not polled while they are empty: their agent
    /// waits for the next message (see <see cref="LocalGather"/>) and comes back this long after an idle second.</summary>
    public TimeSpan PollPeriod { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary><see cref="StreamProviderKind.Local"/>: when a message arrives in an empty queue, how long its agent
    /// waits before reading, so that what arrives together is read and delivered together. Zero reads at once: ads at
    /// 10,000 events/s then had a median about 4 ms lower but no better p99, and saturation 10 % more bytes per event
    /// in smaller deliveries (docs/performance.md, stop 44).</summary>
    public TimeSpan LocalGather { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Stream messages handed to a consumer in one call when they have piled up.</summary>
    [Range(1, 1024)]
    public int BatchContainerBatchSize { get; set; } = 16;

    /// <summary>How long a failing delivery is retried before Orleans gives it up and skips the message for that
    /// consumer. Orleans' default, one minute, is shorter than a loaded cluster can take to declare a killed silo dead:
    /// deliveries to consumers that lived there fail until then, and were skipped — events lost without a trace. The
    /// operators retry and dead-letter by themselves, so this only has to outlast a failover; past
    /// <see cref="MaxConsumerLag"/> the cache has dropped the message anyway.</summary>
    public TimeSpan MaxEventDeliveryTime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Queues of the <see cref="StreamProviderKind.Local"/> and <see cref="StreamProviderKind.Memory"/> providers.</summary>
    [Range(1, 256)]
    public int MemoryQueues { get; set; } = 8;

    /// <summary><see cref="StreamProviderKind.Local"/>: undelivered messages a queue holds before ingest's publish to the
    /// fronting stream fails (and the producers retry), as the memory provider's queue grains do at 16,384. Only the
    /// pipeline's source is bounded: routers and operators publish while handling a delivery, and refusing them could
    /// make queues wait on each other for good.</summary>
    [Range(16, 1_000_000)]
    public int LocalQueueCapacity { get; set; } = 16_384;

    /// <summary><see cref="StreamProviderKind.Local"/>: messages a pulling agent keeps for its consumers. When the
    /// slowest consumer is this far behind, the agent stops reading its queue until it catches up (back-pressure;
    /// nothing is dropped, unlike the memory provider's age-based cache).</summary>
    /// <remarks>
    /// Orleans' cache lets go of delivered messages a tenth of its size at a time, once every consumer has passed
    /// them, and each routed message keeps its whole input batch alive: with 4,096, half of the surviving events
    /// sampled in a heap dump at saturation were delivered ones held there (the other half sat in the benchmark
    /// producer's queue). With 512, five saturation runs alternated with 4,096 paused 15 % less for GC and ran 8 %
    /// more events/s, with the same ads and aggregation latencies at 10,000/s (docs/performance.md).
    /// </remarks>
    [Range(64, 1_000_000)]
    public int LocalCacheSize { get; set; } = 512;

    /// <summary>How long delivered messages stay in the pulling agents' cache (Orleans keeps five minutes, for rewinding).</summary>
    public TimeSpan CacheRetention { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How far (in enqueue time) a consumer may fall behind the newest message of its queue. Orleans purges
    /// its stream cache by age, delivered or not: a consumer further behind than this loses messages. Larger values
    /// hold more of the stream in memory while consumers lag.</summary>
    public TimeSpan MaxConsumerLag { get; set; } = TimeSpan.FromMinutes(5);

    public AzureQueueStreamSettings AzureQueue { get; set; } = new();
    public EventHubsStreamSettings EventHubs { get; set; } = new();
}

public sealed class AzureQueueStreamSettings
{
    /// <summary>Defaults to <c>Keystone:Storage:ConnectionString</c>.</summary>
    public string? ConnectionString { get; set; }

    [Range(1, 256)]
    public int QueueCount { get; set; } = 8;

    /// <summary>Queue names are <c>{prefix}-{n}</c>; Azure queue names are 3-63 lower-case letters, digits and dashes.</summary>
    [RegularExpression("^[a-z0-9](?!.*--)[a-z0-9-]{1,50}$")]
    public string QueuePrefix { get; set; } = "keystone";

    /// <summary>How long a read message stays invisible before it is delivered again if not deleted.</summary>
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest an empty queue goes unread. After each empty read the wait doubles from
    /// <c>Keystone:Streaming:PollPeriod</c> up to this; a read that finds messages, or a message this silo enqueues,
    /// ends it. Each read is a billed storage request: reading every poll period, an idle silo with 8 queues made 633 a
    /// second. A message enqueued by another silo waits at most this long longer. Zero (or not above the poll period):
    /// every poll period, as Orleans reads.</summary>
    public TimeSpan MaxIdlePoll { get; set; } = TimeSpan.FromSeconds(1);
}

public sealed class EventHubsStreamSettings
{
    public string? ConnectionString { get; set; }
    public string? Hub { get; set; }
    public string ConsumerGroup { get; set; } = "$Default";

    /// <summary>Table storage for the partition checkpoints; defaults to <c>Keystone:Storage:ConnectionString</c>.</summary>
    public string? CheckpointConnectionString { get; set; }

    [RegularExpression("^[A-Za-z][A-Za-z0-9]{2,62}$")]
    public string CheckpointTable { get; set; } = "keystonecheckpoints";

    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Section <c>Keystone:Local</c>: conveniences for the one-command local run.</summary>
public sealed class LocalOptions
{
    public const string Section = "Keystone:Local";

    /// <summary>Start Azurite from infra/ and point storage at it.</summary>
    public bool StartAzurite { get; set; }

    /// <summary>Azurite data directory, relative to the working directory; empty keeps data in memory.</summary>
    public string? AzuriteData { get; set; } = ".local/azurite";

    /// <summary>Run the traffic simulator inside the silo.</summary>
    public bool Simulate { get; set; }

    [Range(1, 1_000_000)]
    public int SimulateRate { get; set; } = 200;
}
