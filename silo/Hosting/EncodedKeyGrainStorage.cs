using Keystone.Storage;
using Orleans.Storage;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Grain storage that hands the inner provider a grain id whose key is <see cref="StorageNames.Key"/> of the real
/// one. Orleans' blob provider names a blob <c>{state}-{grainId}.json</c> with the key as it is and has no hook for
/// the name, so this is where entity ids (and any other key) get a storage-safe name. Plain keys are unchanged,
/// so state written before the encoding existed keeps loading.
/// </summary>
internal sealed class EncodedKeyGrainStorage(IGrainStorage inner) : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    public static GrainId Stored(GrainId grainId)
    {
        var key = grainId.Key.ToString();
        var stored = StorageNames.Key(key);
        return ReferenceEquals(stored, key) ? grainId : GrainId.Create(grainId.Type, IdSpan.Create(stored));
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ReadStateAsync(stateName, Stored(grainId), grainState);

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        inner.ReadStateAsync(stateName, Stored(grainId), grainState, cancellationToken);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.WriteStateAsync(stateName, Stored(grainId), grainState);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        inner.WriteStateAsync(stateName, Stored(grainId), grainState, cancellationToken);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        inner.ClearStateAsync(stateName, Stored(grainId), grainState);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken) =>
        inner.ClearStateAsync(stateName, Stored(grainId), grainState, cancellationToken);

    // The blob provider initialises its container in the silo lifecycle; Orleans subscribes whatever is registered
    // under the provider's name, which is now this wrapper.
    public void Participate(ISiloLifecycle lifecycle) => (inner as ILifecycleParticipant<ISiloLifecycle>)?.Participate(lifecycle);
}
