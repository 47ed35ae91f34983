using System.Runtime.CompilerServices;

namespace Keystone.Storage;

/// <summary>
/// What must be copied into a state object at the instant it is serialised: the parts that live in other structures
/// between writes (the de-duplication memory, recent contributions). Orleans' storage bridge starts a write only after
/// yielding, and an entity's <c>Checkpoint</c> is interleaved, so a delivery can be applied between the copy and the
/// serialisation: copied earlier, the state would hold that delivery's counts without its event ids, and the replay
/// after a crash would count it twice. <see cref="SnapshotGrainStorage"/> runs the capture right before it serialises.
/// </summary>
public static class SnapshotCapture
{
    private static readonly ConditionalWeakTable<object, Action> Captures = new();

    /// <summary>Runs <paramref name="capture"/> whenever <paramref name="state"/> is about to be serialised for a write.</summary>
    public static void Register(object state, Action capture) => Captures.AddOrUpdate(state, capture);

    /// <summary>Forgets the capture once its write is done: an idle entity need not keep it until the next one.</summary>
    public static void Unregister(object state) => Captures.Remove(state);

    /// <summary>Serialises a state for a write, after its capture (if one is registered).</summary>
    public static BinaryData Serialize<T>(Orleans.Storage.IGrainStorageSerializer serializer, T state)
    {
        if (state is not null && Captures.TryGetValue(state, out var capture)) capture();
        return serializer.Serialize(state);
    }
}
