using Keystone.Aggregation;
using Keystone.Operations;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// Fault injection, registered by tests only: while <see cref="Unreachable"/> is set, a user grain answers any batch
/// holding an event that carries <paramref name="marker"/> as a payload value the way a grain on a killed silo does
/// until the cluster declares that silo dead (<see cref="SiloUnavailableException"/>), before the grain runs.
/// </summary>
public sealed class UnreachableEntityFilter(string marker) : IIncomingGrainCallFilter
{
    private int _rejected;

    public volatile bool Unreachable = true;

    /// <summary>Calls answered as unreachable so far.</summary>
    public int Rejected => Volatile.Read(ref _rejected);

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (Unreachable
            && context.InterfaceMethod?.DeclaringType == typeof(IUserGrain)
            && context.InterfaceMethod.Name == nameof(IUserGrain.ApplyActivity)
            && context.Request.GetArgument(0) is ActivityBatch batch
            && batch.Events.Any(e => FaultOptions.Carries(e, marker)))
        {
            Interlocked.Increment(ref _rejected);
            throw new SiloUnavailableException($"fault injection ({nameof(UnreachableEntityFilter)}): the grain's silo is not reachable");
        }
        return context.Invoke();
    }

    public Action<IServiceCollection> Register => services => services.AddSingleton<IIncomingGrainCallFilter>(this);
}
