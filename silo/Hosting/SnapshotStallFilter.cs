using Keystone.Operations;
using Keystone.Storage;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Fault injection, registered only when <c>Keystone:Faults:StalledSnapshotBuckets</c> names buckets: their writes
/// never complete, so the silo can be killed in the middle of a checkpoint. Kept out of the grain itself.
/// </summary>
internal sealed class SnapshotStallFilter(IOptions<FaultOptions> faults, ILogger<SnapshotStallFilter> logger) : IIncomingGrainCallFilter
{
    private int _logged;

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.Grain is ISnapshotBucketGrain
            && context.InterfaceMethod.Name is nameof(ISnapshotBucketGrain.Write) or nameof(ISnapshotBucketGrain.Clear)
            && faults.Value.StalledSnapshotBuckets.Contains((int)context.TargetId.GetIntegerKey()))
        {
            if (Interlocked.Exchange(ref _logged, 1) == 0)
                logger.LogWarning("Fault injection: writes to snapshot buckets {Buckets} are stalled (Keystone:Faults:StalledSnapshotBuckets)", faults.Value.StalledSnapshotBuckets);
            await Task.Delay(Timeout.Infinite);
        }
        await context.Invoke();
    }
}

/// <summary>
/// Fault injection, registered only when <c>Keystone:Faults:SlowSnapshotWrites</c> is set: a grain's state write waits
/// that long before it is sent to its snapshot bucket, so a checkpoint lasts seconds and the silo can be stopped in
/// the middle of one, with writes under way in the entity grains while the buckets are idle.
/// </summary>
internal sealed class SlowSnapshotWriteFilter(IOptions<FaultOptions> faults) : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        if (context.InterfaceMethod?.DeclaringType == typeof(ISnapshotBucketGrain)
            && context.InterfaceMethod.Name is nameof(ISnapshotBucketGrain.Write) or nameof(ISnapshotBucketGrain.Clear))
            await Task.Delay(faults.Value.SlowSnapshotWrites);
        await context.Invoke();
    }
}
