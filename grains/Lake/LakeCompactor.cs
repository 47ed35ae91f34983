using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;

namespace Keystone.Lake;

/// <summary>What compacting one (hour, partition) did.</summary>
public sealed record HourCompaction(bool Compacted, long Rows, long WindowRows, long Duplicates, long Unreadable, int Deleted, IReadOnlyList<string> Files);

/// <summary>
/// Turns sealed archive hours into Parquet: per (hour, partition) one <c>events</c> file (typed envelope and common
/// payload columns, the payload and metadata as JSON) and, when the hour holds window results, one
/// <c>activity_windows</c> file, sorted by time, de-duplicated by event id (the archive is at-least-once), written
/// with ZSTD by an embedded DuckDB, then the manifest. Plain logic over blob storage, used by the compactor grain and
/// the benchmark.
/// </summary>
/// <param name="background">Where <see cref="CompactInBackgroundAsync"/> runs; by default a thread of the compactor's
/// own at a low priority (<see cref="Archive.BackgroundScheduler"/>). Tests pass their own.</param>
public sealed class LakeCompactor(BlobContainerClient container, IArchiveHourSource source, LakeOptions options, TimeProvider time, ILogger? logger = null,
    TaskScheduler? background = null) : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly Archive.BackgroundScheduler? _own = background is null ? new Archive.BackgroundScheduler("keystone-lake-compact") : null;

    public void Dispose() => _own?.Dispose();

    /// <summary>
    /// <see cref="CompactAsync"/> on the compactor's low-priority thread, as the silo runs it: an hour's compaction is
    /// seconds of one core (gzip, JSON, DuckDB with one thread, which runs on its caller's), and on the thread pool it
    /// would hold up the pipeline's grain turns, once an hour for every partition, as the lake's seals did (stop 43).
    /// </summary>
    public Task<CompactionReport> CompactInBackgroundAsync(DateTimeOffset from, DateTimeOffset to, bool includeOpen = false, CancellationToken cancellationToken = default) =>
        Archive.BackgroundScheduler.RunAsync(background ?? _own!, () => CompactAsync(from, to, includeOpen, cancellationToken), cancellationToken);

    public async Task<CompactionReport> CompactAsync(DateTimeOffset from, DateTimeOffset to, bool includeOpen = false, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var work = new List<HourInput>();
        var notSealed = 0;
        for (var hour = Archive.ArchiveStore.HourOf(from); hour < to; hour = hour.AddHours(1))
        {
            var inputs = await source.ListAsync(hour, cancellationToken);
            if (!includeOpen && hour.AddHours(1) + options.SealAfter > now) notSealed += inputs.Count;
            else work.AddRange(inputs);
        }
        if (work.Count > 0) await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var results = new HourCompaction[work.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, work.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken },
            async (i, ct) => results[i] = await CompactHourAsync(work[i], now, ct));
        return new CompactionReport(
            results.Count(r => r.Compacted), results.Count(r => !r.Compacted), notSealed,
            results.Sum(r => r.Rows), results.Sum(r => r.WindowRows), results.Sum(r => r.Duplicates), results.Sum(r => r.Unreadable),
            results.Sum(r => r.Deleted), [.. results.SelectMany(r => r.Files)]);
    }

    public async Task<LakeManifest?> ReadManifestAsync(DateTimeOffset hour, int partition, CancellationToken cancellationToken = default)
    {
        try
        {
            var content = await container.GetBlobClient(LakeNames.Manifest(hour, partition)).DownloadContentAsync(cancellationToken);
            return content.Value.Content.ToObjectFromJson<LakeManifest>(Json);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Compacts one sealed (hour, partition) unless its manifest already covers the raw segments; then applies retention.</summary>
    public async Task<HourCompaction> CompactHourAsync(HourInput input, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var manifest = await ReadManifestAsync(input.Hour, input.Partition, cancellationToken);
        var compacted = false;
        HourCompaction result;
        if (manifest is not null && manifest.Covers(input.Segments))
        {
            result = new HourCompaction(false, 0, 0, 0, 0, 0, []);
        }
        else
        {
            manifest = await BuildAsync(input, manifest, cancellationToken);
            compacted = true;
            result = new HourCompaction(true, manifest.Rows(LakeSchema.EventsTable), manifest.Rows(LakeSchema.WindowsTable), manifest.Duplicates, manifest.Unreadable, 0, [.. manifest.Files.Select(f => f.Name)]);
        }

        if (options.RawRetention is { } retention && input.Hour.AddHours(1) + retention <= now && input.Segments.Count > 0)
        {
            var deleted = 0;
            var sources = manifest.Sources.ToList();
            foreach (var segment in input.Segments)
            {
                if (await source.DeleteAsync(segment, cancellationToken)) deleted++;
                var i = sources.FindIndex(s => s.Name == segment.Name);
                if (i >= 0) sources[i] = sources[i] with { Deleted = true };
                else sources.Add(segment with { Deleted = true });
            }
            await WriteManifestAsync(manifest with { Sources = sources }, cancellationToken);
            logger?.LogInformation("Lake: deleted {Count} raw segments of {Hour:u} p{Partition} (retention {Retention})", deleted, input.Hour, input.Partition, retention);
            result = result with { Deleted = deleted };
        }
        if (compacted) logger?.LogInformation("Lake: compacted {Hour:u} p{Partition}: {Rows} events, {Windows} window results, {Duplicates} duplicates dropped",
            input.Hour, input.Partition, result.Rows, result.WindowRows, result.Duplicates);
        return result;
    }

    private async Task<LakeManifest> BuildAsync(HourInput input, LakeManifest? previous, CancellationToken cancellationToken)
    {
        var work = Directory.CreateTempSubdirectory("keystone-compact-");
        try
        {
            using var db = new DuckDBConnection("DataSource=:memory:");
            db.Open();
            // One thread per connection: the output is then the same bytes for the same input, and partitions compact in parallel.
            Execute(db, "SET threads = 1; SET preserve_insertion_order = true; SET autoinstall_known_extensions = false; SET autoload_known_extensions = false");
            Execute(db, LakeSchema.CreateTable("raw_events", LakeSchema.EventColumns));
            Execute(db, LakeSchema.CreateTable("raw_windows", LakeSchema.WindowColumns));

            // Retention deleted some raw segments: their events live on only in the Parquet file, which is read back first.
            var sources = new List<SegmentVersion>();
            if (previous is { HasDeletedSources: true })
            {
                sources.AddRange(previous.Sources.Where(s => s.Deleted));
                foreach (var file in previous.Files.Where(f => f.Table == LakeSchema.EventsTable))
                {
                    var local = Path.Combine(work.FullName, Path.GetFileName(file.Name));
                    await container.GetBlobClient(file.Name).DownloadToAsync(local, cancellationToken);
                    Execute(db, $"INSERT INTO raw_events SELECT * FROM read_parquet('{Escape(local)}')");
                }
            }
            sources.AddRange(input.Segments);

            // Fast path: DuckDB parses the JSON lines itself. One statement, so a malformed line leaves nothing behind,
            // and the slow path below reads event by event, leaving out (and counting) what it cannot read.
            long unreadable = 0;
            var loaded = false;
            if (await source.StageAsync(input, work.FullName, cancellationToken) is { Count: > 0 } staged)
            {
                try
                {
                    Execute(db, LakeSchema.InsertEventsFromJsonLines("raw_events", staged, input.Partition));
                    loaded = true;
                }
                catch (DuckDBException e)
                {
                    logger?.LogWarning("Lake: {Hour:u} p{Partition} has lines DuckDB cannot read ({Error}); reading it event by event", input.Hour, input.Partition, e.Message.Split('\n')[0]);
                }
            }
            else if (input.Segments.Count == 0)
            {
                loaded = true;
            }
            if (!loaded)
            {
                using var events = db.CreateAppender("raw_events");
                await foreach (var line in source.ReadAsync(input, cancellationToken))
                {
                    if (line.Event is not { } e)
                    {
                        unreadable++;
                        logger?.LogWarning("Lake: unreadable archive line left out of {Hour:u} p{Partition}: {Error}", input.Hour, input.Partition, line.Error);
                        continue;
                    }
                    Append(events, LakeSchema.Map(e, input.Partition));
                }
            }
            Execute(db, LakeSchema.InsertWindowsFromEvents("raw_windows", "raw_events"));

            var files = new List<LakeFile>();
            long duplicates = 0;
            foreach (var (table, raw) in new[] { (LakeSchema.EventsTable, "raw_events"), (LakeSchema.WindowsTable, "raw_windows") })
            {
                var name = LakeNames.File(input.Hour, input.Partition, table);
                var column = LakeSchema.TimeColumn(table);
                var (total, rows, min, max) = Stats(db, raw, column);
                if (table == LakeSchema.EventsTable) duplicates = total - rows;
                if (rows == 0)
                {
                    if (table == LakeSchema.WindowsTable) await container.GetBlobClient(name).DeleteIfExistsAsync(cancellationToken: cancellationToken);
                    if (table == LakeSchema.WindowsTable) continue;
                }
                var local = Path.Combine(work.FullName, Path.GetFileName(name));
                // DISTINCT ON sorts whole rows (a third of the work): only when there are repeats to drop.
                var rowsOnce = total == rows ? raw : $"(SELECT DISTINCT ON (event_id) * FROM {raw} ORDER BY event_id, \"{column}\")";
                Execute(db, $"COPY (SELECT * FROM {rowsOnce} ORDER BY \"{column}\", event_id) " +
                            $"TO '{Escape(local)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)");
                await container.GetBlobClient(name).UploadAsync(local, overwrite: true, cancellationToken);
                files.Add(new LakeFile(name, table, rows, new FileInfo(local).Length, min, max));
            }
            var manifest = new LakeManifest(input.Hour, input.Partition, sources, files, duplicates, unreadable, time.GetUtcNow());
            await WriteManifestAsync(manifest, cancellationToken);
            return manifest;
        }
        finally
        {
            try { work.Delete(recursive: true); } catch (IOException) { }
        }
    }

    private Task WriteManifestAsync(LakeManifest manifest, CancellationToken cancellationToken) =>
        container.GetBlobClient(LakeNames.Manifest(manifest.Hour, manifest.Partition)).UploadAsync(BinaryData.FromObjectAsJson(manifest, Json), overwrite: true, cancellationToken);

    private static (long Total, long Distinct, DateTime? Min, DateTime? Max) Stats(DuckDBConnection db, string table, string column)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT count(*), count(DISTINCT event_id), min(\"{column}\"), max(\"{column}\") FROM {table}";
        using var r = cmd.ExecuteReader();
        r.Read();
        return (r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetDateTime(2), r.IsDBNull(3) ? null : r.GetDateTime(3));
    }

    private static void Append(DuckDBAppender appender, EventRow r) =>
        appender.CreateRow()
            .AppendValue(r.EventId).AppendValue(r.EventType).AppendValue(r.Timestamp).AppendValue(r.Version)
            .AppendValue(r.Service).AppendValue(r.DeviceType).AppendValue(r.Region)
            .AppendValue(r.UserId).AppendValue(r.ProfileId).AppendValue(r.VideoId).AppendValue(r.DeviceId)
            .AppendValue(r.CampaignId).AppendValue(r.AdSessionId).AppendValue(r.Quality)
            .AppendValue(r.PositionMs).AppendValue(r.CostMicros)
            .AppendValue(r.Payload).AppendValue(r.Metadata).AppendValue((int?)r.Partition)
            .EndRow();

    internal static void Execute(DuckDBConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    internal static string Escape(string path) => path.Replace("'", "''", StringComparison.Ordinal);
}
