using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Keystone.Archive;
using Keystone.Events;

namespace Keystone.Lake;

/// <summary>The raw segments of one (hour, partition) of the archive.</summary>
public sealed record HourInput(DateTimeOffset Hour, int Partition, IReadOnlyList<SegmentVersion> Segments);

/// <summary>A line of a raw segment: the event, or why it could not be read.</summary>
public readonly record struct ArchiveLine(KeystoneEvent? Event, string? Error);

/// <summary>
/// Compaction's input: the raw events of an (hour, partition). Today the archive's gzip JSON-lines blobs; the storage
/// redesign may make the sealed fronting log the lake, and then only this interface gets a second implementation.
/// </summary>
public interface IArchiveHourSource
{
    /// <summary>Every partition with raw segments in this hour, with the segments' current size and version.</summary>
    Task<IReadOnlyList<HourInput>> ListAsync(DateTimeOffset hour, CancellationToken cancellationToken = default);

    /// <summary>The events of these segments, in segment order then line order.</summary>
    IAsyncEnumerable<ArchiveLine> ReadAsync(HourInput input, CancellationToken cancellationToken = default);

    /// <summary>Deletes a raw segment (retention); false if it was already gone.</summary>
    Task<bool> DeleteAsync(SegmentVersion segment, CancellationToken cancellationToken = default);

    /// <summary>
    /// The fast path: the segments as local gzip-compressed JSON-lines files of envelopes (concatenated gzip members
    /// allowed) in <paramref name="directory"/>, which DuckDB reads itself; null when this source cannot stage, and
    /// compaction reads <see cref="ReadAsync"/> event by event instead.
    /// </summary>
    Task<IReadOnlyList<string>?> StageAsync(HourInput input, string directory, CancellationToken cancellationToken = default);
}

/// <summary>The raw lake's blobs: <c>archive/yyyy/MM/dd/HH/p{partition}-{n}.jsonl.gz</c> (an archive writer's parts) or
/// <c>p{partition}-s{first}-{batch}.jsonl.gz</c> (sealed fronting log segments).</summary>
public sealed partial class ArchiveBlobHourSource(BlobContainerClient container) : IArchiveHourSource
{
    private readonly ArchiveStore _store = new(container);

    // p{n}-0000: the archive writers' parts; p{n}-s{first}-{batch}: sealed fronting log segments (SealedLogLake);
    // p{n}-w0000: the window results (WindowArchiveWriterGrain).
    [GeneratedRegex(@"/p(\d+)-(?:w?\d+|s\d+-[0-9a-f]+)\.jsonl\.gz$")]
    private static partial Regex SegmentName();

    /// <summary>A segment of window results (<see cref="WindowArchiveWriterGrain"/>) rather than of ingested events.</summary>
    public static bool IsWindowSegment(string name) => name.EndsWith(".jsonl.gz", StringComparison.Ordinal) && name.Contains("-w", StringComparison.Ordinal);

    public async Task<IReadOnlyList<HourInput>> ListAsync(DateTimeOffset hour, CancellationToken cancellationToken = default)
    {
        var byPartition = new SortedDictionary<int, List<SegmentVersion>>();
        try
        {
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, ArchiveStore.HourPrefix(hour), cancellationToken))
            {
                if (SegmentName().Match(blob.Name) is not { Success: true } m) continue;
                var partition = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                if (!byPartition.TryGetValue(partition, out var list)) byPartition[partition] = list = [];
                list.Add(new SegmentVersion(blob.Name, blob.Properties.ContentLength ?? 0, blob.Properties.ETag?.ToString() ?? ""));
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }
        return [.. byPartition.Select(p => new HourInput(ArchiveStore.HourOf(hour), p.Key, [.. p.Value.OrderBy(s => s.Name, StringComparer.Ordinal)]))];
    }

    public async IAsyncEnumerable<ArchiveLine> ReadAsync(HourInput input, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var segment in input.Segments)
        {
            await foreach (var line in _store.ReadLinesAsync(segment.Name).WithCancellation(cancellationToken))
            {
                KeystoneEvent? e = null;
                string? error = null;
                try
                {
                    e = EventJson.Parse(line);
                }
                catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidDataException)
                {
                    error = $"{segment.Name}: {ex.Message}";
                }
                yield return new ArchiveLine(e, error);
            }
        }
    }

    // The archive's segments are already in that format: staging is a download.
    public async Task<IReadOnlyList<string>?> StageAsync(HourInput input, string directory, CancellationToken cancellationToken = default)
    {
        var files = new List<string>();
        for (var i = 0; i < input.Segments.Count; i++)
        {
            var local = Path.Combine(directory, $"segment-{i:D4}.jsonl.gz");
            await container.GetBlobClient(input.Segments[i].Name).DownloadToAsync(local, cancellationToken);
            files.Add(local);
        }
        return files;
    }

    public async Task<bool> DeleteAsync(SegmentVersion segment, CancellationToken cancellationToken = default) =>
        (await container.GetBlobClient(segment.Name).DeleteIfExistsAsync(cancellationToken: cancellationToken)).Value;
}
