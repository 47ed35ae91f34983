using System.Net;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Keystone.Pipeline;
using Keystone.Silo.Streaming;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.Streams;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Checkpointing;
using Keystone.Graph;
using Keystone.Operations;

namespace Keystone.Silo.Hosting;

/// <summary>Turns the Keystone configuration sections into an Orleans silo: clustering, blob state, streams, dashboard.</summary>
internal static class SiloSetup
{
    public static void ConfigureSilo(ISiloBuilder silo, IConfiguration configuration, bool dashboard)
    {
        var cluster = Bind<ClusterOptions>(configuration, ClusterOptions.Section);
        var storage = Bind<StorageOptions>(configuration, StorageOptions.Section);
        var streaming = Bind<StreamingOptions>(configuration, StreamingOptions.Section);
        // Every storage client of the silo counts its requests into one place (keystone_storage_requests_total).
        var requests = new StorageRequests();
        silo.Services.AddSingleton(requests);
        BlobServiceClient Blobs(string connection) => new(connection, StorageClient(new BlobClientOptions(), "blob", storage, requests));
        TableServiceClient Tables(string connection) => new(connection, StorageClient(new TableClientOptions(), "table", storage, requests));

        silo.Configure<GrainDirectoryOptions>(o => o.CacheSize = cluster.DirectoryCacheSize);
        switch (cluster.Mode)
        {
            case ClusteringMode.Localhost:
                var primary = new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort ?? cluster.SiloPort);
                silo.UseLocalhostClustering(cluster.SiloPort, cluster.GatewayPort, primary, cluster.ServiceId, cluster.ClusterId);
                break;
            case ClusteringMode.AzureTable:
                silo.Configure<Orleans.Configuration.ClusterOptions>(o =>
                {
                    o.ClusterId = cluster.ClusterId;
                    o.ServiceId = cluster.ServiceId;
                });
                silo.UseAzureStorageClustering(o => o.TableServiceClient = Tables(cluster.ConnectionString ?? storage.ConnectionString));
                if (cluster.Kubernetes)
                {
                    // Kubernetes hosting listens on every interface. It advertises the pod IP only when nothing set an
                    // address before it, and Orleans' defaults do (the first interface): set it from the pod here.
                    silo.Configure<EndpointOptions>(o =>
                    {
                        o.SiloPort = cluster.SiloPort;
                        o.GatewayPort = cluster.GatewayPort;
                        if (IPAddress.TryParse(Environment.GetEnvironmentVariable(Orleans.Hosting.Kubernetes.KubernetesHostingOptions.PodIPEnvironmentVariable), out var podIp))
                            o.AdvertisedIPAddress = podIp;
                    });
                    silo.UseKubernetesHosting();
                }
                else
                {
                    silo.ConfigureEndpoints(IPAddress.Loopback, cluster.SiloPort, cluster.GatewayPort, listenOnAnyHostAddress: false);
                }
                break;
        }

        if (storage.GrainState == GrainStateStore.Memory)
        {
            silo.AddMemoryGrainStorage(StorageNames.State);
        }
        else
        {
            // All grain state goes to snapshot buckets: many states per blob, written in groups (see SnapshotBucketGrain).
            silo.Services.AddSingleton(new SnapshotStore(Blobs(storage.ConnectionString).GetBlobContainerClient(storage.Container), storage.SnapshotBuckets, storage.SnapshotCompactAfter, storage.SnapshotLinger, (long)storage.SnapshotWarmMegabytes << 20));
            silo.Services.AddKeyedSingleton<IGrainStorage>(StorageNames.State, (services, key) => new SnapshotGrainStorage(
                services.GetRequiredService<IGrainFactory>(), services.GetRequiredService<SnapshotStore>(),
                services.GetRequiredKeyedService<IGrainStorageSerializer>(key)));
        }
        silo.Services.AddKeyedSingleton<IGrainStorageSerializer, KeystoneStateSerializer>(StorageNames.State);
        silo.Services.AddKeyedSingleton<IStreamIdMapper, TopicStreamIdMapper>(TopicStreamIdMapper.Name);
        silo.Services.AddSingleton(new PipelineDescription(streaming.Provider.ToString()));
        var faults = Bind<Keystone.Operations.FaultOptions>(configuration, Keystone.Operations.FaultOptions.Section);
        if (faults.StalledSnapshotBuckets.Length > 0) silo.AddIncomingGrainCallFilter<SnapshotStallFilter>();
        if (faults.SlowSnapshotWrites > TimeSpan.Zero) silo.AddOutgoingGrainCallFilter<SlowSnapshotWriteFilter>();
        // The window operators' write-ahead logs live next to the grain state, in a container of their own.
        silo.Services.AddSingleton<IOperatorLogFactory>(new BlobOperatorLogFactory(
            Blobs(storage.ConnectionString).GetBlobContainerClient(WalContainer(storage.Container))));

        silo.Services.AddSingleton(new DeadLetterStore(
            Blobs(storage.ConnectionString).GetBlobContainerClient(DeadLetterContainer(storage.Container)), faults.StallDeadLetterWrites));
        AddRetention(silo.Services, "dead letters", sp => (cutoff, _) => sp.GetRequiredService<DeadLetterStore>().PurgeAsync(cutoff),
            sp => sp.GetRequiredService<IOptions<DeadLetterOptions>>().Value.Retention);
        // Committed exports (billing, fraud alerts): written per checkpoint, read by the systems that act on them.
        silo.Services.AddSingleton(new ExportStore(
            Blobs(storage.ConnectionString).GetBlobContainerClient(ExportContainer(storage.Container)), faults.StallExportWrites));
        AddRetention(silo.Services, "committed export files", sp => sp.GetRequiredService<ExportStore>().PurgeAsync,
            sp => sp.GetRequiredService<IOptions<Keystone.Ads.AdsOptions>>().Value.ExportRetention);
        silo.Services.AddSingleton(new GraphPageStore(
            Blobs(storage.ConnectionString).GetBlobContainerClient(GraphContainer(storage.Container))));
        silo.Services.AddSingleton<GraphServices>();
        // The fronting log: the one durable write on an event's path (memory streams by default; see CheckpointOptions).
        var checkpoints = Bind<CheckpointOptions>(configuration, CheckpointOptions.Section);
        var durableStreams = streaming.Provider is not (StreamProviderKind.Memory or StreamProviderKind.Local);
        checkpoints.Resolve(durableStreams);
        switch (checkpoints.Resolved)
        {
            case FrontingLogMode.File:
                // The container disposes the group commit's thread when the silo stops.
                if (checkpoints.FileSync == FileLogSync.FileSystem) silo.Services.AddSingleton<FileSystemSync>();
                silo.Services.AddSingleton<IFrontingLog>(sp => new FileFrontingLog(Path.GetFullPath(checkpoints.LogDirectory!), sp.GetService<FileSystemSync>()));
                break;
            case FrontingLogMode.EventHubs:
                var hub = checkpoints.EventHubs;
                // Made by the container so that it closes the hub connection when the silo stops.
                silo.Services.AddSingleton(_ => new AzureEventHubPartitions(hub.ConnectionString!, hub.Hub!, hub.ConsumerGroup));
                silo.Services.AddSingleton<IFrontingLog>(sp => new EventHubsFrontingLog(sp.GetRequiredService<AzureEventHubPartitions>(),
                    sp.GetRequiredService<IOptions<IngestOptions>>().Value.Partitions, sp.GetRequiredService<ILoggerFactory>().CreateLogger<EventHubsFrontingLog>(), requests,
                    sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
                // One hub event per fronting message, and an Event Hubs event holds at most 1 MB.
                silo.Services.PostConfigure<IngestOptions>(o => o.MaxBytesPerStreamMessage = Math.Min(o.MaxBytesPerStreamMessage, MaxEventHubsFrontingBytes));
                break;
            default:
                silo.Services.AddSingleton<IFrontingLog>(new BlobFrontingLog(Blobs(storage.ConnectionString).GetBlobContainerClient(FrontingLogContainer(storage.Container))));
                break;
        }
        silo.Services.AddOptions<CheckpointOptions>().Bind(configuration.GetSection(CheckpointOptions.Section))
            .PostConfigure(o => o.Resolve(durableStreams));
        silo.AddStartupTask(async (services, cancellationToken) =>
        {
            var grains = services.GetRequiredService<IGrainFactory>();
            var startup = services.GetRequiredService<ILoggerFactory>().CreateLogger("Keystone.Silo.Startup");
            var checkpointing = services.GetRequiredService<IOptions<CheckpointOptions>>().Value;
            if (checkpointing.Logging)
                await StartupRetry.Pipeline(startup, TimeSpan.FromSeconds(2))
                    .ExecuteAsync(async token => await grains.GetGrain<ICheckpointCoordinatorGrain>(0).Start(), cancellationToken);
            // Each log writer seals into the lake what it finds closed when it activates (a crash or a stop left it):
            // activated now, not at the first event after the restart. Not awaited: the silo answers meanwhile.
            if (checkpointing.LakeFromLog && services.GetRequiredService<IOptions<ArchiveOptions>>().Value.Enabled)
                _ = Task.WhenAll(Enumerable.Range(0, services.GetRequiredService<IOptions<IngestOptions>>().Value.Partitions)
                    .Select(p => grains.GetGrain<IFrontingPartitionGrain>(p).Head()))
                    .ContinueWith(t => startup.LogWarning(t.Exception, "Lake: activating the fronting log writers at start failed; each seals what it finds at its first event"),
                        CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            await OpenTopicTaps(grains, startup);
            WarmUp(services, startup);
        });
        silo.Services.AddSingleton(new ArchiveStore(
            Blobs(storage.ConnectionString).GetBlobContainerClient(LakeContainer(storage.Container))));
        // The columnar lake (issue 15): Parquet next to the raw archive in the lake container, compacted and queried here.
        var lakeContainer = Blobs(storage.ConnectionString).GetBlobContainerClient(LakeContainer(storage.Container));
        silo.Services.AddSingleton<Keystone.Lake.IArchiveHourSource>(new Keystone.Lake.ArchiveBlobHourSource(lakeContainer));
        silo.Services.AddSingleton(sp => new Keystone.Lake.LakeReplayReader(lakeContainer, sp.GetRequiredService<Keystone.Lake.IArchiveHourSource>()));
        silo.Services.AddSingleton(sp => new Keystone.Lake.LakeCompactor(lakeContainer, sp.GetRequiredService<Keystone.Lake.IArchiveHourSource>(),
            sp.GetRequiredService<IOptions<Keystone.Lake.LakeOptions>>().Value, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<Keystone.Lake.LakeCompactor>()));
        silo.Services.AddSingleton(sp =>
        {
            // The queries' own client: a request with no answer is sent again well within the query's StorageTimeout,
            // where the SDK's default would wait 100 s for it.
            var lake = sp.GetRequiredService<IOptions<Keystone.Lake.LakeOptions>>().Value;
            var options = requests.Attach(new BlobClientOptions { Retry = { NetworkTimeout = lake.StorageTryTimeout } }, "blob");
            var container = new BlobServiceClient(storage.ConnectionString, options).GetBlobContainerClient(LakeContainer(storage.Container));
            return new Keystone.Lake.LakeQueryEngine(container, lake, sp.GetRequiredService<ILoggerFactory>().CreateLogger<Keystone.Lake.LakeQueryEngine>());
        });
        silo.Services.AddHostedService<LakeCompactionService>();
        // Entities that lost their memory with a departed silo are replayed to at once, not at their operator's next checkpoint.
        silo.Services.AddHostedService<SiloDepartureRecovery>();
        silo.Services.AddSingleton<LocalArchiveWriters>();
        silo.Services.AddSingleton<SealedLogLake>();
        silo.Services.AddSingleton<LocalFrontingPartitions>();
        silo.Services.AddSingleton<Keystone.Checkpointing.SiloStopping>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SiloStopFlush>();

        ConfigureStreams(silo, streaming, storage, requests);
        ConfigureEntityLifetime(silo, Bind<AggregationOptions>(configuration, AggregationOptions.Section).EntityLifetime);

        if (dashboard) silo.AddDashboard();
    }

    /// <summary>Idle users, videos and profiles leave memory after <paramref name="lifetime"/> (see <see cref="AggregationOptions.IdleEntityLifetime"/>).</summary>
    // Every storage client of the silo is counted, and gives up on a try that gets no answer after
    // RequestTryTimeout rather than the SDK's 100 s (and after RequestRetries tries more).
    private static T StorageClient<T>(T options, string service, StorageOptions storage, StorageRequests requests) where T : Azure.Core.ClientOptions
    {
        options.Retry.NetworkTimeout = storage.RequestTryTimeout;
        options.Retry.MaxRetries = storage.RequestRetries;
        return requests.Attach(options, service);
    }

    private static void ConfigureEntityLifetime(ISiloBuilder silo, TimeSpan lifetime) =>
        silo.Configure<GrainCollectionOptions>(o =>
        {
            foreach (var type in new[] { typeof(UserGrain), typeof(VideoGrain), typeof(ProfileGrain) })
                o.ClassSpecificCollectionAge[type.FullName!] = lifetime;
            // Orleans looks for idle activations every quantum (a minute), and wants every age above it.
            if (lifetime <= o.CollectionQuantum) o.CollectionQuantum = lifetime / 2;
        });

    private static void ConfigureStreams(ISiloBuilder silo, StreamingOptions streaming, StorageOptions storage, StorageRequests requests)
    {
        void PullingAgent(OptionsBuilder<StreamPullingAgentOptions> ob) => ob.Configure(o =>
        {
            o.GetQueueMsgsTimerPeriod = streaming.PollPeriod;
            o.BatchContainerBatchSize = streaming.BatchContainerBatchSize;
            o.MaxEventDeliveryTime = streaming.MaxEventDeliveryTime;
        });

        switch (streaming.Provider)
        {
            case StreamProviderKind.Local:
                silo.AddPersistentStreams(Topics.StreamNames.Provider,
                    (services, name) => Keystone.Silo.Streaming.LocalQueueAdapterFactory.Create(services, name, streaming.MemoryQueues, streaming.LocalQueueCapacity, streaming.LocalCacheSize, streaming.LocalGather),
                    b =>
                    {
                        b.ConfigurePullingAgent(PullingAgent);
                        b.ConfigurePartitionBalancing((_, _) => new Keystone.Silo.Streaming.EveryQueueBalancer());
                        b.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                    });
                // Same bound as the memory provider, so that a configuration moves between the two unchanged.
                silo.Services.PostConfigure<IngestOptions>(o => o.MaxBytesPerStreamMessage = Math.Min(o.MaxBytesPerStreamMessage, 512 * 1024));
                break;

            case StreamProviderKind.Memory:
                silo.AddMemoryStreams(Topics.StreamNames.Provider, b =>
                {
                    b.ConfigurePartitioning(streaming.MemoryQueues);
                    b.ConfigurePullingAgent(PullingAgent);
                    // Orleans keeps delivered messages five minutes for rewinding consumers; none of ours rewinds, and at
                    // 100k events/s that cache is gigabytes of pooled blocks.
                    b.ConfigureCacheEviction(ob => ob.Configure(o =>
                    {
                        o.DataMinTimeInCache = streaming.CacheRetention;
                        o.DataMaxAgeInCache = streaming.CacheRetention + streaming.MaxConsumerLag;
                        o.MetadataMinTimeInCache = streaming.CacheRetention + streaming.MaxConsumerLag;
                    }));
                    b.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                });
                // The memory cache stores each message in one pooled 1 MiB block.
                silo.Services.PostConfigure<IngestOptions>(o => o.MaxBytesPerStreamMessage = Math.Min(o.MaxBytesPerStreamMessage, 512 * 1024));
                break;

            case StreamProviderKind.AzureQueue:
                var queues = streaming.AzureQueue;
                silo.AddAzureQueueStreams(Topics.StreamNames.Provider, b =>
                {
                    b.ConfigureAzureQueue(ob => ob.Configure(o =>
                    {
                        o.QueueServiceClient = new QueueServiceClient(queues.ConnectionString ?? storage.ConnectionString, StorageClient(new QueueClientOptions(), "queue", storage, requests));
                        o.QueueNames = Enumerable.Range(0, queues.QueueCount).Select(i => $"{queues.QueuePrefix}-{i}").ToList();
                        o.MessageVisibilityTimeout = queues.VisibilityTimeout;
                    }));
                    b.ConfigurePullingAgent(PullingAgent);
                    b.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                });
                if (queues.MaxIdlePoll > streaming.PollPeriod)
                {
                    // Registered after Orleans' own factory, so it is the one the provider resolves: empty queues are read
                    // less and less often (each read is a billed storage request), busy ones as before.
                    silo.Services.AddKeyedSingleton<IQueueAdapterFactory>(Topics.StreamNames.Provider, (services, _) => new IdlePollingQueueAdapterFactory(
                        Orleans.Providers.Streams.AzureQueue.AzureQueueAdapterFactory.Create(services, Topics.StreamNames.Provider), streaming.PollPeriod, queues.MaxIdlePoll,
                        services.GetRequiredService<TimeProvider>()));
                }
                // A queue message holds 64 KiB base64-encoded (48 KiB of bytes, less Orleans' envelope); keep batches inside it.
                silo.Services.PostConfigure<IngestOptions>(o => o.MaxBytesPerStreamMessage = Math.Min(o.MaxBytesPerStreamMessage, 40 * 1024));
                break;

            case StreamProviderKind.EventHubs:
                var hubs = streaming.EventHubs;
                silo.AddEventHubStreams(Topics.StreamNames.Provider, b =>
                {
                    b.ConfigureEventHub(ob => ob.Configure(o => o.ConfigureEventHubConnection(hubs.ConnectionString!, hubs.Hub!, hubs.ConsumerGroup)));
                    b.UseAzureTableCheckpointer(ob => ob.Configure(o =>
                    {
                        o.TableServiceClient = new TableServiceClient(hubs.CheckpointConnectionString ?? storage.ConnectionString, StorageClient(new TableClientOptions(), "table", storage, requests));
                        o.TableName = hubs.CheckpointTable;
                        o.PersistInterval = hubs.CheckpointInterval;
                    }));
                    b.UseDataAdapter((services, name) => ActivatorUtilities.CreateInstance<KeystoneEventHubDataAdapter>(services));
                    b.ConfigurePullingAgent(PullingAgent);
                    b.ConfigureStreamPubSub(StreamPubSubType.ImplicitOnly);
                    b.ConfigureCacheEviction(ob => ob.Configure(o =>
                    {
                        o.DataMinTimeInCache = streaming.CacheRetention;
                        o.DataMaxAgeInCache = streaming.CacheRetention + streaming.MaxConsumerLag;
                        o.MetadataMinTimeInCache = streaming.CacheRetention + streaming.MaxConsumerLag;
                    }));
                });
                // An Event Hubs batch holds at most 1 MiB.
                silo.Services.PostConfigure<IngestOptions>(o => o.MaxBytesPerStreamMessage = Math.Min(o.MaxBytesPerStreamMessage, 512 * 1024));
                break;
        }
    }

    /// <summary>The graph's sealed reverse-adjacency pages' container: the state container's name with "-graph".</summary>
    public static string GraphContainer(string stateContainer) => stateContainer.Length <= 57 ? stateContainer + "-graph" : stateContainer[..57] + "-graph";

    /// <summary>The data lake's container: the state container's name with "-lake".</summary>
    public static string LakeContainer(string stateContainer) => stateContainer.Length <= 58 ? stateContainer + "-lake" : stateContainer[..58] + "-lake";

    /// <summary>The fronting log's container: the state container's name with "-log".</summary>
    /// <summary>A janitor per store; several <see cref="IHostedService"/> registrations, so not AddHostedService (which
    /// keeps one per implementation type). The retention is read at each purge, so a changed option applies.</summary>
    private static void AddRetention(IServiceCollection services, string what, Func<IServiceProvider, Func<DateTimeOffset, CancellationToken, Task<int>>> purge,
        Func<IServiceProvider, TimeSpan> retention) =>
        services.AddSingleton<IHostedService>(sp => new RetentionJanitor(what, purge(sp), () => retention(sp),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger<RetentionJanitor>()));

    /// <summary>Bytes per fronting message with the Event Hubs log: half an Event Hubs event (1 MB), leaving room for a
    /// batch's codec overhead over the size the chunker estimates.</summary>
    public const int MaxEventHubsFrontingBytes = 512 * 1024;

    public static string FrontingLogContainer(string stateContainer) => stateContainer.Length <= 59 ? stateContainer + "-log" : stateContainer[..59] + "-log";

    /// <summary>The dead-letter container: the state container's name with "-dead".</summary>
    public static string DeadLetterContainer(string stateContainer) => stateContainer.Length <= 58 ? stateContainer + "-dead" : stateContainer[..58] + "-dead";

    /// <summary>The committed exports' container: the state container's name with "-export".</summary>
    public static string ExportContainer(string stateContainer) => stateContainer.Length <= 56 ? stateContainer + "-export" : stateContainer[..56] + "-export";

    /// <summary>The container of the operators' write-ahead logs: the state container's name with "-wal".</summary>
    public static string WalContainer(string stateContainer) => stateContainer.Length <= 59 ? stateContainer + "-wal" : stateContainer[..59] + "-wal";

    internal static T Bind<T>(IConfiguration configuration, string section) where T : new()
    {
        var value = new T();
        configuration.GetSection(section).Bind(value);
        return value;
    }

    // The first events after a start paid for activating every tap of every topic they reached (21 topics × 8
    // partitions with the shipped rules): the quick start's catalogue, published at start, showed 340 ms of lag on
    // its topic against about 280 ms with the taps already open. A tap holds nothing durable, so opening them early
    // costs one call each; a failure only leaves them to open on first use.
    private static void WarmUp(IServiceProvider services, ILogger logger)
    {
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            PipelineWarmUp.Run(services.GetRequiredService<SchemaRegistryProvider>(), services.GetRequiredService<RoutingRulesProvider>(), services.GetRequiredService<TimeProvider>());
            logger.LogDebug("Event path warmed up in {Elapsed}", System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Warming up the event path at start failed; the first events compile it instead");
        }
    }

    private static async Task OpenTopicTaps(IGrainFactory grains, ILogger logger)
    {
        try
        {
            var client = await Keystone.Client.Querying.KeystoneQueryClient.ConnectAsync(grains);
            await client.GetTopicsAsync();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Opening the topic taps at start failed; they open with their first events instead");
        }
    }
}
