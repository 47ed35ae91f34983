using Orleans.Concurrency;

namespace Keystone.Storage;

/// <summary>
/// One bucket of grain state (key: the bucket number). Every grain state hashes to one bucket; the bucket writes the
/// states it is given as one blob per group of concurrent writes, so a checkpoint that touches thousands of entities
/// costs one storage request per bucket, and it knows which states exist, so activating a grain that was never
/// written costs none.
/// </summary>
public interface ISnapshotBucketGrain : IGrainWithIntegerKey
{
    /// <summary>The newest state of <paramref name="key"/>, or none if it was never written or was cleared.</summary>
    Task<SnapshotState?> Read(string key);

    /// <summary>
    /// Makes <paramref name="data"/> the durable state of <paramref name="key"/> if its version is still
    /// <paramref name="expectedVersion"/> (0: no state yet), and answers once it is durable. Otherwise it writes
    /// nothing and answers with the current version: the caller's activation is stale. (An answer, not an exception:
    /// an <c>InconsistentStateException</c> escaping this grain would make Orleans deactivate the bucket.)
    /// </summary>
    Task<SnapshotWrite> Write(string key, long expectedVersion, Immutable<byte[]> data);

    /// <summary>
    /// <see cref="Write"/> by an entity leaving memory: once durable, the bucket also keeps <paramref name="data"/> in
    /// its memory, and the entity's next activation reads it from there, without a storage request.
    /// </summary>
    Task<SnapshotWrite> WriteAndKeep(string key, long expectedVersion, Immutable<byte[]> data);

    /// <summary>
    /// Keeps <paramref name="data"/>, the serialized state of an entity leaving memory with nothing new to write, for
    /// its next activation, if <paramref name="version"/> is the durable version of <paramref name="key"/> and no write
    /// of it is queued; writes nothing. False when it is not (the state is kept nowhere then).
    /// </summary>
    Task<bool> Keep(string key, long version, Immutable<byte[]> data);

    /// <summary>Removes the state of <paramref name="key"/>, under the same version check as <see cref="Write"/>.</summary>
    Task<SnapshotWrite> Clear(string key, long expectedVersion);
}

/// <summary>Whether a write was made durable, and the version the state has now.</summary>
[GenerateSerializer, Immutable]
public sealed record SnapshotWrite([property: Id(0)] bool Written, [property: Id(1)] long Version);

[GenerateSerializer, Immutable]
public sealed record SnapshotState([property: Id(0)] long Version, [property: Id(1)] byte[] Data);
