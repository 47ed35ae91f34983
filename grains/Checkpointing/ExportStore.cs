using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Keystone.Checkpointing;

/// <summary>A record of a committed export: one JSON object per line, with snake_case fields.</summary>
public interface IExportRecord
{
    /// <summary>Writes the record's fields (the object's braces are the caller's).</summary>
    void Write(Utf8JsonWriter writer);
}

/// <summary>
/// Committed exports in Azure Blob storage (see <see cref="CommittedExport{TRecord}"/>): one JSON-lines blob per
/// checkpoint and partition that had outputs, named <c>{sink}/{yyyy-MM-dd}/{HH}/{yyyyMMddTHHmmssfffffff}Z-p{partition}.jsonl</c>
/// after the checkpoint that sealed it, so that a listing of an hour is in commit order and a consumer can resume from
/// the last name it took. A file is written again only with the same name and bytes: a write whose answer was lost
/// (the storage client's next try, or the next checkpoint's, see <see cref="CommittedExport{TRecord}"/>). Keystone
/// deletes files only past their retention.
/// </summary>
/// <param name="stalled">Fault injection (<c>Keystone:Faults:StallExportWrites</c>): writes never complete.</param>
public sealed class ExportStore(BlobContainerClient container, bool stalled = false)
{
    /// <summary>Hours a single listing may span: a consumer pages through longer periods.</summary>
    public const int MaxHoursPerListing = 7 * 24;

    private volatile bool _ready;

    /// <summary>Sink names are path segments: lower-case letters, digits and dashes.</summary>
    public static bool IsSinkName(string sink) =>
        sink.Length is > 0 and <= 63 && sink.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    public static string NameOf(string sink, int partition, DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return $"{sink}/{utc:yyyy-MM-dd}/{utc:HH}/{utc.ToString("yyyyMMdd'T'HHmmssfffffff", CultureInfo.InvariantCulture)}Z-p{partition:D3}.jsonl";
    }

    /// <summary>Parses a name written by <see cref="NameOf"/>; null for anything else (no path tricks reach storage).</summary>
    public static (string Sink, int Partition, DateTimeOffset At)? Parse(string name)
    {
        var parts = name.Split('/');
        if (parts.Length != 4 || !IsSinkName(parts[0])) return null;
        var file = parts[3];
        if (file.Length < 34 || file.Length > 40 || !file.EndsWith(".jsonl", StringComparison.Ordinal) || !file.AsSpan(22).StartsWith("Z-p", StringComparison.Ordinal)) return null;
        if (!DateTime.TryParseExact(file[..22], "yyyyMMdd'T'HHmmssfffffff", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at)) return null;
        if (!int.TryParse(file.AsSpan(25, file.Length - 31), NumberStyles.None, CultureInfo.InvariantCulture, out var partition)) return null;
        var time = new DateTimeOffset(at, TimeSpan.Zero);
        return NameOf(parts[0], partition, time) == name ? (parts[0], partition, time) : null;
    }

    /// <summary>Writes one file of outputs (nothing when there are none) and returns its name.</summary>
    public async Task<string?> WriteAsync<TRecord>(string sink, int partition, IReadOnlyList<TRecord> records, DateTimeOffset at, CancellationToken cancellationToken = default)
        where TRecord : IExportRecord
    {
        if (records.Count == 0) return null;
        if (stalled) await Task.Delay(Timeout.Infinite, cancellationToken);
        await Ready(cancellationToken);
        var content = Serialize(records);
        var name = NameOf(sink, partition, at);
        await container.GetBlobClient(name).UploadAsync(content, new BlobUploadOptions
        {
            Metadata = new Dictionary<string, string> { ["records"] = records.Count.ToString(CultureInfo.InvariantCulture) },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/x-ndjson" },
        }, cancellationToken);
        return name;
    }

    // Written by hand, not by JsonSerializer: an ads checkpoint at 10,000 events/s writes some 15,000 records per
    // partition, and the reflection-based serializer took long enough (with its first-use setup, on every partition
    // at once) to put ad.complete's publish → counted p99 from about 110 ms to 300 ms and more.
    private static BinaryData Serialize<TRecord>(IReadOnlyList<TRecord> records) where TRecord : IExportRecord
    {
        var buffer = new ArrayBufferWriter<byte>(records.Count * 256);
        using var writer = new Utf8JsonWriter(buffer);
        foreach (var record in records)
        {
            writer.WriteStartObject();
            record.Write(writer);
            writer.WriteEndObject();
            writer.Flush();
            buffer.Write("\n"u8);
            writer.Reset(buffer);
        }
        return new BinaryData(buffer.WrittenMemory);
    }

    /// <summary>The files of a sink committed in [<paramref name="from"/>, <paramref name="to"/>), in commit order
    /// within each hour, at most <paramref name="limit"/>.</summary>
    public async Task<List<ExportFile>> ListAsync(string sink, DateTimeOffset from, DateTimeOffset to, int? partition = null, int limit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        var files = new List<ExportFile>();
        if (!await container.ExistsAsync(cancellationToken)) return files;
        var hour = new DateTimeOffset(from.UtcDateTime.Date.AddHours(from.UtcDateTime.Hour), TimeSpan.Zero);
        for (; hour < to && files.Count < limit; hour = hour.AddHours(1))
        {
            var prefix = $"{sink}/{hour.UtcDateTime:yyyy-MM-dd}/{hour.UtcDateTime:HH}/";
            var inHour = new List<ExportFile>();
            await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix, Traits = BlobTraits.Metadata }, cancellationToken))
            {
                if (Parse(blob.Name) is not { } parsed || parsed.At < from || parsed.At >= to) continue;
                if (partition is { } p && parsed.Partition != p) continue;
                var records = blob.Metadata.TryGetValue("records", out var r) && int.TryParse(r, CultureInfo.InvariantCulture, out var n) ? n : 0;
                inHour.Add(new ExportFile(blob.Name, parsed.Sink, parsed.Partition, parsed.At, records, blob.Properties.ContentLength ?? 0));
            }
            // Names sort by commit time within the hour; partitions of the same instant by partition.
            files.AddRange(inHour.OrderBy(f => f.Name, StringComparer.Ordinal).Take(limit - files.Count));
        }
        return files;
    }

    public async Task<byte[]?> ReadAsync(string name, CancellationToken cancellationToken = default)
    {
        if (Parse(name) is null) return null;
        try
        {
            return await Keystone.Storage.BlobBytes.DownloadAsync(container.GetBlobClient(name), cancellationToken: cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>The events whose outputs a partition released since <paramref name="since"/>, oldest first, read
    /// back from its files (their <c>event_id</c> fields).</summary>
    public async Task<List<(Guid EventId, DateTimeOffset ReleasedAt)>> ReleasedAsync(string sink, int partition, DateTimeOffset since, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var released = new List<(Guid, DateTimeOffset)>();
        foreach (var file in await ListAsync(sink, since, now.AddMinutes(1), partition, cancellationToken: cancellationToken))
        {
            if (await ReadAsync(file.Name, cancellationToken) is not { } content) continue;
            foreach (var line in Encoding.UTF8.GetString(content).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("event_id", out var id) && id.TryGetGuid(out var eventId)) released.Add((eventId, file.CommittedAt));
            }
        }
        return released;
    }

    /// <summary>Deletes the export files committed before <paramref name="cutoff"/>, every sink; returns how many.
    /// Days wholly before the cutoff are listed and emptied; anything not named as an export is left alone.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset cutoff, CancellationToken cancellationToken = default)
    {
        if (!await container.ExistsAsync(cancellationToken)) return 0;
        var cutoffDay = cutoff.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var deleted = 0;
        await foreach (var sink in container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Delimiter = "/" }, cancellationToken))
        {
            if (!sink.IsPrefix || !IsSinkName(sink.Prefix.TrimEnd('/'))) continue;
            await foreach (var day in container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Delimiter = "/", Prefix = sink.Prefix }, cancellationToken))
            {
                // Day folders are yyyy-MM-dd: they sort as dates, and a later day holds nothing older than the cutoff.
                if (!day.IsPrefix || string.CompareOrdinal(day.Prefix[sink.Prefix.Length..].TrimEnd('/'), cutoffDay) > 0) continue;
                await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = day.Prefix }, cancellationToken))
                {
                    if (Parse(blob.Name) is not { } parsed || parsed.At >= cutoff) continue;
                    await container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken);
                    deleted++;
                }
            }
        }
        return deleted;
    }

    private async Task Ready(CancellationToken cancellationToken)
    {
        if (_ready) return;
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        _ready = true;
    }
}

[Orleans.Concurrency.StatelessWorker]
public sealed class ExportReaderGrain(ExportStore store) : Orleans.Grain, IExportReaderGrain
{
    public Task<List<ExportFile>> List(string sink, DateTimeOffset from, DateTimeOffset to, int? partition, int limit) =>
        store.ListAsync(sink, from, to, partition, limit);

    public Task<byte[]?> Read(string name) => store.ReadAsync(name);
}
