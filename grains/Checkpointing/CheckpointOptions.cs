namespace Keystone.Checkpointing;

public enum FrontingLogMode
{
    /// <summary>On with memory streams (whose messages die with the process); off with Azure Queue and Event Hubs,
    /// which are durable logs themselves.</summary>
    Auto,
    On,
    Off,
}

/// <summary>The fronting log and the checkpoints that let it be replayed. Section <c>Keystone:Checkpoints</c>.</summary>
public sealed class CheckpointOptions
{
    public const string Section = "Keystone:Checkpoints";

    public FrontingLogMode FrontingLog { get; set; } = FrontingLogMode.Auto;

    /// <summary>How often a checkpoint starts: recovery replays at most about this much of the log.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether ingest writes the fronting log: resolved at start from <see cref="FrontingLog"/> and the stream provider.</summary>
    public bool Logging { get; private set; }

    public void Resolve(bool durableStreams) => Logging = FrontingLog switch
    {
        FrontingLogMode.On => true,
        FrontingLogMode.Off => false,
        _ => !durableStreams,
    };

    public IEnumerable<string> Problems()
    {
        if (Interval < TimeSpan.FromMilliseconds(100)) yield return "Keystone:Checkpoints:Interval must be at least 100 ms.";
    }
}
