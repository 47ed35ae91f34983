using Keystone.Aggregation;
using Keystone.Operations;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// Fault injection, registered by tests only, for an entity grain that loses its memory in the middle of a delivery,
/// as the grains of a killed silo do:
/// <list type="number">
/// <item>the first activity batch holding an event that carries <paramref name="marker"/> deactivates the user grain
/// without its leaving write (the reason a stopping silo gives) and fails as unreachable, so the operator's retry meets
/// a new activation, which has only what its last checkpoint had;</item>
/// <item>the first batch for <paramref name="video"/> after that fails as unreachable too, so the delivery that met the
/// new activation fails once more before it goes through.</item>
/// </list>
/// </summary>
public sealed class LostMemoryFilter(string marker, string video) : IIncomingGrainCallFilter
{
    private int _lost;
    private int _videoFailed;

    /// <summary>Whether the user's activation was dropped and, after it, the video's call failed.</summary>
    public bool Done => Volatile.Read(ref _lost) == 1 && Volatile.Read(ref _videoFailed) == 1;

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.DeclaringType == typeof(IUserGrain)
            && context.InterfaceMethod.Name == nameof(IUserGrain.ApplyActivity)
            && context.Request.GetArgument(0) is ActivityBatch batch
            && batch.Events.Any(e => FaultOptions.Carries(e, marker))
            && Interlocked.CompareExchange(ref _lost, 1, 0) == 0)
        {
            context.TargetContext.Deactivate(new DeactivationReason(DeactivationReasonCode.ShuttingDown, $"fault injection ({nameof(LostMemoryFilter)}): the activation loses its memory"));
            throw new SiloUnavailableException($"fault injection ({nameof(LostMemoryFilter)}): the grain's silo is not reachable");
        }
        if (context.InterfaceMethod?.DeclaringType == typeof(IVideoGrain)
            && context.InterfaceMethod.Name == nameof(IVideoGrain.ApplyActivity)
            && context.Request.GetArgument(0) is VideoActivityBatch plays
            && plays.Plays.Any(p => p.VideoId == video)
            && Volatile.Read(ref _lost) == 1
            && Interlocked.CompareExchange(ref _videoFailed, 1, 0) == 0)
        {
            throw new SiloUnavailableException($"fault injection ({nameof(LostMemoryFilter)}): the video grain's silo is not reachable");
        }
        return context.Invoke();
    }

    public Action<IServiceCollection> Register => services => services.AddSingleton<IIncomingGrainCallFilter>(this);
}
