using Keystone.Events;

namespace Keystone.Operations;

/// <summary>Fault injection for drills and tests. Section <c>Keystone:Faults</c>; empty in every shipped configuration.</summary>
public sealed class FaultOptions
{
    public const string Section = "Keystone:Faults";

    /// <summary>When set, the routers throw on any event with a payload string equal to this value: a poison event,
    /// to watch the dead-letter path work (and to replay it once the "fix", removing this, is deployed). The entity
    /// grains' equivalent is a grain call filter the tests register (PoisonEventFilter), not an option.</summary>
    public string? RouterPoisonMarker { get; set; }

    /// <summary>Writes to these snapshot buckets never complete: a checkpoint then stays half-written (some entity
    /// states durable, the rest not) for as long as the silo lives — the crash drill kills it in that state. Applied by
    /// a grain call filter the silo registers only when this is set (SnapshotStallFilter).</summary>
    public int[] StalledSnapshotBuckets { get; set; } = [];

    /// <summary>Every grain state write waits this long before it goes to its snapshot bucket: a checkpoint of a few
    /// hundred entities then lasts seconds, so the silo can be stopped in the middle of one (SlowSnapshotWriteFilter,
    /// an outgoing grain call filter the silo registers only when this is set).</summary>
    public TimeSpan SlowSnapshotWrites { get; set; }

    /// <summary>Writes to the committed exports never complete: an ads checkpoint then has its campaigns durable and
    /// its billing and fraud records not yet sent, for as long as the silo lives — the crash drill kills it in that
    /// state and checks that the restarted silo sends every record once.</summary>
    public bool StallExportWrites { get; set; }

    /// <summary>Writes to the dead-letter store never complete: ingest must still answer a request with refused events
    /// in it, and accept its valid ones, within <see cref="DeadLetterOptions.KeepTimeout"/>.</summary>
    public bool StallDeadLetterWrites { get; set; }

    /// <summary>The first this many replays each router is asked for (<c>Rewind</c>) fail, as one does when the router
    /// cannot reach the checkpoint coordinator while a dead silo's share of the grain directory is recovered: the
    /// operator that asked must try again by itself.</summary>
    public int FailedRouterRewinds { get; set; }

    public bool IsRouterPoison(KeystoneEvent e) => Carries(e, RouterPoisonMarker);

    public static bool Carries(KeystoneEvent e, string? marker) =>
        marker is { Length: > 0 } && e.Payload.ToDictionary().Values.Any(v => v is string s && s == marker);
}
