using Keystone.Events;

namespace Keystone.Ingest;

/// <summary>One refused event: its position in the request, its <c>event_id</c> as sent (if any), the field and the reason.</summary>
[GenerateSerializer, Immutable]
public sealed record EventRejection(
    [property: Id(0)] int Index,
    [property: Id(1)] string? EventId,
    [property: Id(2)] string Field,
    [property: Id(3)] string Error);

public enum BodyCompression : byte
{
    None = 0,

    /// <summary>K4os LZ4 "pickle" framing, as the SDK sends it.</summary>
    Lz4 = 1,
}

/// <summary>A batch as it crosses from a producer (SDK, REST gateway, CLI) to the cluster: the raw JSON, untouched.</summary>
[GenerateSerializer, Immutable]
public sealed record IngestRequest(
    [property: Id(0)] byte[] Body,
    [property: Id(1)] BodyFormat Format,
    [property: Id(2)] BodyCompression Compression,
    [property: Id(3)] string Origin);

/// <summary>What ingest did with a batch. <see cref="BodyError"/> set means the body was unusable and nothing was accepted.</summary>
[GenerateSerializer, Immutable]
public sealed record IngestResult(
    [property: Id(0)] int Accepted,
    [property: Id(1)] int Duplicates,
    [property: Id(2)] IReadOnlyList<EventRejection> Rejected,
    [property: Id(3)] string? BodyError = null)
{
    public static IngestResult Malformed(string error) => new(0, 0, [], error);
}

/// <summary>
/// The front door of the pipeline. A stateless worker: any silo takes a batch, validates it, and appends it to
/// the fronting stream, one stream message per partition.
/// </summary>
public interface IIngestGrain : IGrainWithIntegerKey
{
    Task<IngestResult> Ingest(IngestRequest request);
}

/// <summary>The unit every stream carries: a batch, never a single event (one event per message tops out near 12k/s).</summary>
[GenerateSerializer, Immutable]
public sealed record EventBatch(
    [property: Id(0)] Guid BatchId,
    [property: Id(1)] int Partition,
    [property: Id(2)] DateTimeOffset CreatedAt,
    [property: Id(3)] KeystoneEvent[] Events);
