using System.Reflection;
using Keystone.Aggregation;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;

namespace Keystone.UnitTests.Silo;

/// <summary>
/// In the Orleans we run (10.4), a stopping silo migrates every activation that has requests waiting, unless its class is
/// <c>[Immovable]</c>, and the migration carries each <see cref="IPersistentState{TState}"/> with Orleans' serializer.
/// Our grain states are JSON checkpoints with no Orleans codec, so such a migration failed at every graceful stop under
/// load ("Failed to dehydrate state named ads-operator … CodecNotFoundException"), and a migrated in-memory copy would
/// skip the restore-and-replay that the exactly-once protocol relies on anyway.
/// </summary>
public sealed class GrainMigrationTests
{
    [Fact]
    public void Every_grain_whose_state_Orleans_cannot_serialise_is_immovable()
    {
        var codecs = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<ICodecProvider>();
        var stateful = typeof(UserGrain).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(Grain).IsAssignableFrom(t))
            .Select(t => (Grain: t, States: PersistentStates(t).ToList()))
            .Where(g => g.States.Count > 0)
            .ToList();

        // The grains this guards: the entities, the operators, the coordinator, the archive writers, the catalogues.
        Assert.True(stateful.Count >= 12, $"found only {stateful.Count} grains with persistent state");
        var offenders = stateful
            .Where(g => g.Grain.GetCustomAttribute<ImmovableAttribute>() is not { Kind: ImmovableKind.Any })
            .SelectMany(g => g.States.Where(s => codecs.TryGetCodec(s.Type) is null)
                .Select(s => $"{g.Grain.Name} keeps '{s.Name}' ({s.Type.Name}), which has no Orleans codec"))
            .ToList();
        Assert.True(offenders.Count == 0,
            "a silo's stop would try to migrate these and log 'Failed to dehydrate'; mark the grain [Immovable] or give the state a codec:\n"
            + string.Join("\n", offenders));
    }

    private static IEnumerable<(string Name, Type Type)> PersistentStates(Type grain) =>
        grain.GetConstructors()
            .SelectMany(c => c.GetParameters())
            .Where(p => p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(IPersistentState<>))
            .Select(p => (p.GetCustomAttribute<PersistentStateAttribute>()?.StateName ?? p.Name!, p.ParameterType.GetGenericArguments()[0]));
}
