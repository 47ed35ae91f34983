namespace Keystone.Archive;

public static class ArchiveTopics
{
    /// <summary>The archive writers' input; the shipped rule <c>all-events-archive</c> sends every event here.</summary>
    public const string Input = "archive-all-events";
}

/// <summary>What to replay from the archive: events with event time in [From, To), optionally of one type.</summary>
/// <param name="ToTopic">Append to this topic; null: publish into the fronting stream through ingest (validated again).</param>
[GenerateSerializer, Immutable]
public sealed record ArchiveReplayRequest(
    [property: Id(0)] DateTimeOffset From,
    [property: Id(1)] DateTimeOffset To,
    [property: Id(2)] string? EventType,
    [property: Id(3)] string? ToTopic);

[GenerateSerializer, Immutable]
public sealed record ArchiveReplayResult(
    [property: Id(0)] int Blobs,
    [property: Id(1)] long Read,
    [property: Id(2)] long Matched,
    [property: Id(3)] long Published,
    [property: Id(4)] long Refused);

[GenerateSerializer, Immutable]
public sealed record ArchiveBlob(
    [property: Id(0)] string Name,
    [property: Id(1)] long Events,
    [property: Id(2)] long Bytes);

/// <summary>Re-reads the archive and publishes what it finds (a stateless worker).</summary>
public interface IArchiveReplayGrain : IGrainWithIntegerKey
{
    Task<ArchiveReplayResult> Replay(ArchiveReplayRequest request);
}

/// <summary>One partition's writer of <see cref="ArchiveTopics.Input"/>.</summary>
public interface IArchiveWriterGrain : IGrainWithStringKey
{
    /// <summary>The blobs this writer has written, with their event counts (the manifest).</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<IReadOnlyList<ArchiveBlob>> GetBlobs();

    /// <summary>Writes the manifests now (tests; otherwise on a timer).</summary>
    Task FlushManifests();

    /// <summary>Writes what waits for the next barrier, then the manifests and this writer's state: a stopping silo
    /// calls it while the grains that store the state still answer.</summary>
    Task Flush();
}
