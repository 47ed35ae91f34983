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
    /// <paramref name="expectedVersion"/> (0: no state yet); otherwise throws Orleans' <c>InconsistentStateException</c>.
    /// Returns the new version once it is durable.
    /// </summary>
    Task<long> Write(string key, long expectedVersion, Immutable<byte[]> data);

    /// <summary>Removes the state of <paramref name="key"/>, under the same version check as <see cref="Write"/>.</summary>
    Task Clear(string key, long expectedVersion);
}

[GenerateSerializer, Immutable]
public sealed record SnapshotState([property: Id(0)] long Version, [property: Id(1)] byte[] Data);
