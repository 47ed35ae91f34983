using Keystone.Aggregation;
using Keystone.Operations;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// Fault injection, registered by tests only: a user grain "fails" on any event carrying <paramref name="marker"/> as
/// a payload value (a poison event), before the grain runs, so the batch leaves no trace and a later replay applies
/// it whole. The dead-letter path is then exercised exactly as a real bug in the grain would exercise it.
/// </summary>
public sealed class PoisonEventFilter(string marker) : IIncomingGrainCallFilter
{
    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.DeclaringType == typeof(IUserGrain)
            && context.InterfaceMethod.Name == nameof(IUserGrain.ApplyActivity)
            && context.Request.GetArgument(0) is ActivityBatch batch
            && batch.Events.FirstOrDefault(e => FaultOptions.Carries(e, marker)) is { } poison)
            throw new InvalidOperationException($"poison event {poison.EventId} (fault injection: {nameof(PoisonEventFilter)})");
        return context.Invoke();
    }

    public static Action<IServiceCollection> For(string marker) => services => services.AddSingleton<IIncomingGrainCallFilter>(new PoisonEventFilter(marker));
}
