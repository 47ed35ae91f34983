using Azure.Storage.Blobs;
using Keystone.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;

namespace Keystone.UnitTests.Storage;

public class SnapshotStoreTests
{
    // A checkpointer skips its own preparation only where the state storage prepares as it serialises: asking anything
    // else (say, whether a SnapshotStore is registered) could skip it for a storage that does not, and a state would
    // then be written without the event ids it had applied.
    [Fact]
    public void Only_the_snapshot_storage_as_the_state_storage_prepares_at_serialisation()
    {
        var store = new SnapshotStore(new BlobContainerClient(new Uri("http://127.0.0.1:1/devstoreaccount1/state")), buckets: 4);

        var snapshot = new ServiceCollection()
            .AddKeyedSingleton<IGrainStorage>(StorageNames.State, new SnapshotGrainStorage(null!, store, new KeystoneStateSerializer()))
            .BuildServiceProvider();
        Assert.True(SnapshotStore.PreparesAtSerialization(snapshot));

        var otherStorageWithAStore = new ServiceCollection()
            .AddSingleton(store)
            .AddKeyedSingleton<IGrainStorage>(StorageNames.State, new OtherStorage())
            .BuildServiceProvider();
        Assert.False(SnapshotStore.PreparesAtSerialization(otherStorageWithAStore));

        Assert.False(SnapshotStore.PreparesAtSerialization(new ServiceCollection().BuildServiceProvider()));
    }

    private sealed class OtherStorage : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.CompletedTask;
    }
}
