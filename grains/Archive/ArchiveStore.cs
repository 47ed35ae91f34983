using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Keystone.Events;

namespace Keystone.Archive;

/// <summary>The data lake: append blobs of gzip-compressed JSON lines, <c>archive/yyyy/MM/dd/HH/p{partition}-{n}.jsonl.gz</c>.</summary>
public sealed class ArchiveStore(BlobContainerClient container)
{
    // An append block holds at most 4 MiB; a barrier's compressed lines are split into members below it.
    private const int MaxBlock = 4 * 1024 * 1024 - 1024;
    private volatile bool _ready;

    // Blobs this process has created: creating on every append doubled the lake's requests. (A few names an hour.)
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _created = new(StringComparer.Ordinal);

    public static DateTimeOffset HourOf(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero);

    public static string HourPrefix(DateTimeOffset t) => $"archive/{t.UtcDateTime:yyyy/MM/dd/HH}/";

    public static string BlobName(DateTimeOffset hour, int partition, int part) => $"{HourPrefix(hour)}p{partition}-{part:D4}.jsonl.gz";

    private async Task Ready()
    {
        if (_ready) return;
        await container.CreateIfNotExistsAsync();
        _ready = true;
    }

    /// <summary>The uncompressed bytes a gzip member may hold: its compressed form then fits one append block.</summary>
    public const int MaxRawBytesPerBlock = MaxBlock;

    /// <summary>Appends the events as gzip members of at most one block each; returns the compressed size.</summary>
    public async Task<long> AppendAsync(string name, IReadOnlyList<KeystoneEvent> events)
    {
        using var lines = new CompressedLines(MaxRawBytesPerBlock);
        foreach (var e in events) lines.Add(e);
        lines.Seal();
        long written = 0;
        foreach (var chunk in lines.Sealed) written += await AppendAsync(name, chunk);
        return written;
    }

    /// <summary>Appends one gzip member (concatenated members are one valid gzip file); returns its size.</summary>
    public async Task<long> AppendAsync(string name, CompressedChunk chunk)
    {
        await Ready();
        var blob = container.GetAppendBlobClient(name);
        if (!_created.ContainsKey(name))
        {
            await blob.CreateIfNotExistsAsync();
            _created[name] = true;
        }
        await using var stream = chunk.OpenRead();
        await blob.AppendBlockAsync(stream);
        return chunk.Length;
    }

    /// <summary>Writes a whole blob of gzip members (a sealed log segment's events of one hour), its event count in its
    /// metadata; a blob of that name is replaced (a segment sealed again after a crash has the same name and bytes).</summary>
    public async Task UploadAsync(string name, CompressedChunk chunk, CancellationToken cancellationToken = default)
    {
        await Ready();
        await using var stream = chunk.OpenRead();
        await container.GetBlobClient(name).UploadAsync(stream, new BlobUploadOptions
        {
            Metadata = new Dictionary<string, string> { [EventsMetadata] = chunk.Events.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        }, cancellationToken);
    }

    private const string EventsMetadata = "events";

    /// <summary>
    /// A partition's data blobs of the hours under <paramref name="prefix"/> (an hour's or a day's), with their event
    /// counts from their metadata (0 for an archive writer's parts, which keep theirs in its state).
    /// </summary>
    public async Task<List<(ArchiveBlob Blob, DateTimeOffset Written)>> ListPartitionAsync(string prefix, int partition, CancellationToken cancellationToken = default)
    {
        await Ready();
        var blobs = new List<(ArchiveBlob, DateTimeOffset)>();
        var mine = $"/p{partition}-";
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken))
        {
            if (!blob.Name.EndsWith(".jsonl.gz", StringComparison.Ordinal) || !blob.Name.Contains(mine, StringComparison.Ordinal)
                || Lake.ArchiveBlobHourSource.IsWindowSegment(blob.Name)) continue;
            var events = blob.Metadata.TryGetValue(EventsMetadata, out var text) && long.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0;
            blobs.Add((new ArchiveBlob(blob.Name, events, blob.Properties.ContentLength ?? 0), blob.Properties.LastModified ?? DateTimeOffset.UtcNow));
        }
        return blobs;
    }

    public async Task WriteManifestAsync(string name, IReadOnlyList<ArchiveBlob> blobs, CancellationToken cancellationToken = default)
    {
        await Ready();
        await container.GetBlobClient(name).UploadAsync(BinaryData.FromObjectAsJson(blobs, new JsonSerializerOptions(JsonSerializerDefaults.Web)), overwrite: true, cancellationToken);
    }

    /// <summary>Data blobs of every hour overlapping [from, to), in name order.</summary>
    public async Task<List<string>> ListAsync(DateTimeOffset from, DateTimeOffset to)
    {
        await Ready();
        var names = new List<string>();
        for (var hour = HourOf(from); hour < to; hour = hour.AddHours(1))
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, HourPrefix(hour), CancellationToken.None))
                if (blob.Name.EndsWith(".jsonl.gz", StringComparison.Ordinal)) names.Add(blob.Name);
        return names;
    }

    /// <summary>The lines of a data blob (every gzip member), one string each.</summary>
    public async IAsyncEnumerable<string> ReadLinesAsync(string name)
    {
        Response<BlobDownloadStreamingResult> download;
        try
        {
            download = await container.GetBlobClient(name).DownloadStreamingAsync();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            yield break;
        }
        await using var body = download.Value.Content;
        await using var gzip = new GZipStream(body, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        while (await reader.ReadLineAsync() is { } line)
            if (line.Length > 0) yield return line;
    }
}
