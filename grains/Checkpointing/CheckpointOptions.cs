namespace Keystone.Checkpointing;

/// <summary>How the file log makes an append durable before it is acknowledged.</summary>
public enum FileLogSync
{
    /// <summary>One flush of the log's file system per round for every partition's appends of the moment
    /// (<see cref="FileSystemSync"/>, Linux <c>syncfs</c>); elsewhere each file of a round in turn.</summary>
    FileSystem,

    /// <summary>An <c>fsync</c> of its own file per append, on the appending thread.</summary>
    PerFile,
}

public enum FrontingLogMode
{
    /// <summary>With memory streams (whose messages die with the process): <see cref="File"/> when
    /// <see cref="CheckpointOptions.LogDirectory"/> is set, <see cref="Blob"/> otherwise. Off with Azure Queue and Event
    /// Hubs, which are durable logs themselves.</summary>
    Auto,

    /// <summary>Append blobs next to the grain state: for silos on separate machines.</summary>
    Blob,

    /// <summary>Local files under <see cref="CheckpointOptions.LogDirectory"/>: for silos that share one disk.</summary>
    File,

    /// <summary>An Azure Event Hub, one hub partition per Keystone partition: the production profile. The checkpoint
    /// records hub offsets (position = sequence number + 1) and recovery reads the hub from them.</summary>
    EventHubs,

    Off,
}

/// <summary>The fronting log and the checkpoints that let it be replayed. Section <c>Keystone:Checkpoints</c>.</summary>
public sealed class CheckpointOptions
{
    public const string Section = "Keystone:Checkpoints";

    public FrontingLogMode FrontingLog { get; set; } = FrontingLogMode.Auto;

    /// <summary>How often a checkpoint starts: recovery replays at most about this much of the log.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Where the file log lives (relative to the working directory). The local run sets <c>.local/fronting-log</c>.</summary>
    public string? LogDirectory { get; set; }

    /// <summary>How the file log flushes (<see cref="FileLogSync"/>). <c>FileSystem</c> flushes the whole file system
    /// the log is on: in production, give <see cref="LogDirectory"/> a volume of its own.</summary>
    public FileLogSync FileSync { get; set; } = FileLogSync.FileSystem;

    /// <summary>The hub for <see cref="FrontingLogMode.EventHubs"/>.</summary>
    public FrontingEventHubsOptions EventHubs { get; set; } = new();

    /// <summary>The log in use, resolved at start from <see cref="FrontingLog"/> and the stream provider; never Auto.</summary>
    public FrontingLogMode Resolved { get; private set; } = FrontingLogMode.Off;

    /// <summary>Whether ingest writes the fronting log.</summary>
    public bool Logging => Resolved != FrontingLogMode.Off;

    /// <summary>Whether the lake is made of the log's closed segments (<see cref="Keystone.Archive.SealedLogLake"/>):
    /// with the File and Blob logs. With Event Hubs (whose retention, not this silo, removes events) and with durable
    /// streams, the archive writer writes the lake from the archive topic.</summary>
    public bool LakeFromLog => Resolved is FrontingLogMode.File or FrontingLogMode.Blob;

    public void Resolve(bool durableStreams) => Resolved = FrontingLog switch
    {
        FrontingLogMode.Auto when durableStreams => FrontingLogMode.Off,
        FrontingLogMode.Auto => string.IsNullOrWhiteSpace(LogDirectory) ? FrontingLogMode.Blob : FrontingLogMode.File,
        var explicitly => explicitly,
    };

    public IEnumerable<string> Problems()
    {
        if (Interval < TimeSpan.FromMilliseconds(100)) yield return "Keystone:Checkpoints:Interval must be at least 100 ms.";
        if (FrontingLog == FrontingLogMode.File && string.IsNullOrWhiteSpace(LogDirectory))
            yield return "Keystone:Checkpoints:LogDirectory is required when Keystone:Checkpoints:FrontingLog is File.";
    }
}

/// <summary>The fronting log's Event Hub. Section <c>Keystone:Checkpoints:EventHubs</c>.</summary>
public sealed class FrontingEventHubsOptions
{
    /// <summary>A namespace connection string (or one with <c>EntityPath</c>); from the environment or a secret store.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The hub: at least <c>Keystone:Ingest:Partitions</c> partitions, retention longer than the longest
    /// operator checkpoint interval plus the longest outage to recover from.</summary>
    public string? Hub { get; set; }

    /// <summary>The consumer group replay reads with (reads are by sequence number; no receiver ownership is taken).</summary>
    public string ConsumerGroup { get; set; } = "$Default";
}
