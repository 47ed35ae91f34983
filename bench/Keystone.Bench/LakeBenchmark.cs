using System.Diagnostics;
using Azure.Storage.Blobs;
using Keystone.Archive;
using Keystone.Client.Simulation;
using Keystone.Events;
using Keystone.Lake;
using Keystone.LocalInfra;

namespace Keystone.Bench;

/// <summary>
/// The columnar lake: writes N simulated events as the archive writers would (gzip JSON lines per hour and partition,
/// one member per 50,000 events) into Azurite, spread evenly over two hours; compacts them to Parquet; then times the
/// group-by the issue names (top 10 titles by region and device over one hour) through the query engine, cold (local
/// cache emptied before each run) and warm.
/// </summary>
/// <remarks>dotnet run -c Release --project bench/Keystone.Bench -- lake --events 2000000 [--partitions 8] [--cold-runs 10] [--warm-runs 50]</remarks>
internal static class LakeBenchmark
{
    public const string TopTitlesSql =
        "SELECT region, device_type, video_id, count(*) AS plays FROM events WHERE event_type = 'video.play.started' " +
        "GROUP BY ALL ORDER BY plays DESC, video_id LIMIT 10";

    public static async Task<int> RunAsync(int eventCount, int partitions, int coldRuns, int warmRuns)
    {
        Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        Console.WriteLine("Starting Azurite (in memory)...");
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("bench-lake");
        await container.CreateIfNotExistsAsync();

        var now = DateTimeOffset.UtcNow;
        var start = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(-3);
        Console.WriteLine($"Generating and archiving {eventCount:N0} simulated events over {start:u} + 2 h in {partitions} partitions...");
        var simulator = new TrafficSimulator(new SimulationOptions { Seed = 42 });
        var store = new ArchiveStore(container);
        var step = TimeSpan.FromHours(2).Ticks / eventCount;
        var pending = new Dictionary<(DateTimeOffset, int), List<KeystoneEvent>>();
        long gzipBytes = 0, jsonBytes = 0;
        var written = Stopwatch.StartNew();
        async Task Flush((DateTimeOffset Hour, int Partition) key, List<KeystoneEvent> list)
        {
            gzipBytes += await store.AppendAsync(ArchiveStore.BlobName(key.Hour, key.Partition, 0), list);
            list.Clear();
        }
        for (var i = 0; i < eventCount; i++)
        {
            var e = simulator.Next(start.AddTicks(i * step));
            jsonBytes += EventJson.SizeOf(e) + 1;
            var key = (ArchiveStore.HourOf(e.Timestamp), Partitioning.PartitionOf(e, partitions));
            if (!pending.TryGetValue(key, out var list)) pending[key] = list = new List<KeystoneEvent>(50_000);
            list.Add(e);
            if (list.Count == 50_000) await Flush(key, list);
        }
        foreach (var (key, list) in pending) if (list.Count > 0) await Flush(key, list);
        Console.WriteLine($"  archived in {written.Elapsed.TotalSeconds:0.0} s: JSON lines {jsonBytes / 1e6:N1} MB, gzip {gzipBytes / 1e6:N1} MB");

        var options = new LakeOptions { SealAfter = TimeSpan.Zero, CacheDirectory = Path.Combine(Path.GetTempPath(), "keystone-lake-bench-cache") };
        var source = new ArchiveBlobHourSource(container);
        var compactor = new LakeCompactor(container, source, options, TimeProvider.System);
        Console.WriteLine("Compacting (download, gunzip, parse, DuckDB, Parquet ZSTD, upload)...");
        var watch = Stopwatch.StartNew();
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var report = await compactor.CompactAsync(start, start.AddHours(2));
        var elapsed = watch.Elapsed;
        var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
        if (report.Rows != eventCount) throw new InvalidOperationException($"compaction wrote {report.Rows:N0} rows for {eventCount:N0} events");
        long parquetBytes = 0;
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, LakeNames.Root, CancellationToken.None))
            if (blob.Name.EndsWith(".parquet", StringComparison.Ordinal)) parquetBytes += blob.Properties.ContentLength ?? 0;
        Console.WriteLine($"  compaction: {report.Rows:N0} events in {report.Compacted} hour-partitions in {elapsed.TotalSeconds:0.00} s = {report.Rows / elapsed.TotalSeconds:N0} events/s; " +
                          $"this process used {cpu.TotalSeconds:0.0} CPU-s = {report.Rows / cpu.TotalSeconds:N0} events per CPU-second (Azurite's CPU not included); load average {LoadAverage()}");
        Console.WriteLine($"  size: Parquet {parquetBytes / 1e6:N1} MB = {100.0 * parquetBytes / gzipBytes:0.0} % of gzip JSON lines ({gzipBytes / 1e6:N1} MB), {100.0 * parquetBytes / jsonBytes:0.0} % of raw JSON");
        await ReportColumnsAsync(container, report.Rows);
        var again = await compactor.CompactAsync(start, start.AddHours(2));
        Console.WriteLine($"  re-run: {again.Compacted} compacted, {again.UpToDate} up to date, {again.Rows} rows written");

        var engine = new LakeQueryEngine(container, options);
        var hour = (start, start.AddHours(1));
        var first = await engine.QueryAsync(TopTitlesSql, hour.start, hour.Item2);
        Console.WriteLine($"  query over one hour ({first.Files} files): top row {string.Join(" | ", first.Rows[0])}");
        var cold = new List<double>();
        for (var i = 0; i < coldRuns; i++)
        {
            engine.ClearCache();
            cold.Add((await engine.QueryAsync(TopTitlesSql, hour.start, hour.Item2)).ElapsedMs);
        }
        var warm = new List<double>();
        for (var i = 0; i < warmRuns; i++) warm.Add((await engine.QueryAsync(TopTitlesSql, hour.start, hour.Item2)).ElapsedMs);
        Console.WriteLine($"  query cold ({coldRuns} runs, cache emptied each time): p50 {Percentile(cold, 0.5):0} ms, p99 {Percentile(cold, 0.99):0} ms");
        Console.WriteLine($"  query warm ({warmRuns} runs): p50 {Percentile(warm, 0.5):0} ms, p99 {Percentile(warm, 0.99):0} ms; load average {LoadAverage()}");
        // Where a warm query's time goes: listing the hour's files in blob storage and checking the cache, versus DuckDB.
        var fetch = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var t = Stopwatch.StartNew();
            await engine.FetchAsync(hour.start, hour.Item2);
            fetch.Add(t.Elapsed.TotalMilliseconds);
        }
        Console.WriteLine($"  of which listing the files in Azurite and checking the cache: p50 {Percentile(fetch, 0.5):0} ms");
        engine.ClearCache();
        return 0;
    }

    /// <summary>Where the Parquet bytes go, per column (compressed, from the files' own metadata), per event.</summary>
    private static async Task ReportColumnsAsync(BlobContainerClient container, long rows)
    {
        var dir = Directory.CreateTempSubdirectory("keystone-lake-columns-");
        try
        {
            var files = new List<string>();
            await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, LakeNames.Root, CancellationToken.None))
            {
                if (!blob.Name.EndsWith(".parquet", StringComparison.Ordinal) || !blob.Name.Contains(LakeSchema.EventsTable, StringComparison.Ordinal)) continue;
                var local = Path.Combine(dir.FullName, $"{files.Count}.parquet");
                await container.GetBlobClient(blob.Name).DownloadToAsync(local);
                files.Add(local);
            }
            using var db = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT path_in_schema, sum(total_compressed_size)::BIGINT AS bytes FROM parquet_metadata([" +
                              string.Join(", ", files.Select(f => $"'{f.Replace("'", "''", StringComparison.Ordinal)}'")) + "]) GROUP BY ALL ORDER BY bytes DESC";
            using var reader = cmd.ExecuteReader();
            Console.WriteLine("  bytes per event by column (events table, compressed):");
            while (reader.Read())
                Console.WriteLine($"    {reader.GetString(0),-14} {(double)reader.GetInt64(1) / rows,7:0.00}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}
