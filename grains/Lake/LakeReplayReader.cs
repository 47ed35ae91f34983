using System.Runtime.CompilerServices;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using DuckDB.NET.Data;

namespace Keystone.Lake;

/// <summary>
/// Reads the archive for replay from whichever form each (hour, partition) is in: the raw segments while they exist,
/// the Parquet file for what retention has deleted (plus any raw segment written after the last compaction).
/// </summary>
public sealed class LakeReplayReader(BlobContainerClient container, IArchiveHourSource source)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Files read so far (raw segments and Parquet files).</summary>
    public sealed class Progress
    {
        public int Files;
    }

    public async IAsyncEnumerable<ArchiveLine> ReadAsync(DateTimeOffset from, DateTimeOffset to, Progress progress, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (var hour = Archive.ArchiveStore.HourOf(from); hour < to; hour = hour.AddHours(1))
        {
            var raw = (await source.ListAsync(hour, cancellationToken)).ToDictionary(i => i.Partition);
            var manifests = await ManifestsAsync(hour, cancellationToken);
            foreach (var partition in raw.Keys.Union(manifests.Keys).Order())
            {
                raw.TryGetValue(partition, out var input);
                if (manifests.TryGetValue(partition, out var manifest) && manifest.HasDeletedSources)
                {
                    foreach (var file in manifest.Files.Where(f => f.Table == LakeSchema.EventsTable))
                    {
                        progress.Files++;
                        await foreach (var e in ReadParquetAsync(file.Name, cancellationToken)) yield return new ArchiveLine(e, null);
                    }
                    var covered = manifest.Sources.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
                    input = input is null ? null : input with { Segments = [.. input.Segments.Where(s => !covered.Contains(s.Name))] };
                }
                // Window results are the aggregations' output, not ingested events: a replay would push them back through ingest.
                input = input is null ? null : input with { Segments = [.. input.Segments.Where(seg => !ArchiveBlobHourSource.IsWindowSegment(seg.Name))] };
                if (input is null || input.Segments.Count == 0) continue;
                progress.Files += input.Segments.Count;
                await foreach (var line in source.ReadAsync(input, cancellationToken)) yield return line;
            }
        }
    }

    private async Task<Dictionary<int, LakeManifest>> ManifestsAsync(DateTimeOffset hour, CancellationToken cancellationToken)
    {
        var result = new Dictionary<int, LakeManifest>();
        try
        {
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, LakeNames.HourPrefix(hour) + "manifest-p", cancellationToken))
            {
                var manifest = (await container.GetBlobClient(blob.Name).DownloadContentAsync(cancellationToken)).Value.Content.ToObjectFromJson<LakeManifest>(Json);
                if (manifest is not null) result[manifest.Partition] = manifest;
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
        return result;
    }

    private async IAsyncEnumerable<Events.KeystoneEvent> ReadParquetAsync(string name, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var local = Path.Combine(Path.GetTempPath(), "keystone-replay-" + Guid.NewGuid().ToString("N") + ".parquet");
        await container.GetBlobClient(name).DownloadToAsync(local, cancellationToken);
        try
        {
            using var db = new DuckDBConnection("DataSource=:memory:");
            db.Open();
            // One file, read in order on the replay's own thread: no DuckDB workers beside it.
            LakeCompactor.Execute(db, "SET threads = 1");
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT event_id, event_type, \"timestamp\", version, service, device_type, region, payload, metadata " +
                              $"FROM read_parquet('{LakeCompactor.Escape(local)}') WHERE NOT (event_type = 'user.activity.window' AND service = 'keystone-aggregations') " +
                              "ORDER BY \"timestamp\", event_id";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return LakeSchema.ToEvent(r.GetString(0), r.GetString(1), r.GetDateTime(2), r.GetString(3), r.GetString(4),
                    r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetString(7), r.GetString(8));
            }
        }
        finally
        {
            File.Delete(local);
        }
    }
}
