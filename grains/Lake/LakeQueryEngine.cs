using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;

namespace Keystone.Lake;

/// <summary>
/// Interactive SQL over the Parquet lake with an embedded DuckDB. A query names a time range; only that range's hours
/// are fetched (through the Azure SDK, into a local cache keyed by ETag) and put behind the views <c>events</c> and
/// <c>activity_windows</c>, which also filter to [from, to). Each query gets its own in-memory database, locked down
/// before the user's SQL runs: no file access outside the cache, no extension loading, configuration locked.
/// </summary>
public sealed class LakeQueryEngine
{
    private readonly BlobContainerClient _container;
    private readonly LakeOptions _options;
    private readonly ILogger? _logger;
    private readonly SqlGuard _guard;

    public LakeQueryEngine(BlobContainerClient container, LakeOptions options, ILogger? logger = null)
    {
        _container = container;
        _options = options;
        _logger = logger;
        _guard = new SqlGuard(options.MaxSqlLength);
        CacheDirectory = Path.GetFullPath(string.IsNullOrWhiteSpace(options.CacheDirectory)
            ? Path.Combine(Path.GetTempPath(), "keystone-lake-cache", container.AccountName + "-" + container.Name)
            : options.CacheDirectory);
        Directory.CreateDirectory(CacheDirectory);
    }

    public string CacheDirectory { get; }

    /// <summary>Runs user SQL after the guard; a refusal of any kind throws <see cref="ArgumentException"/> with the reason.</summary>
    public Task<AnalyticsResult> QueryAsync(string? sql, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var verdict = _guard.Check(sql);
        if (!verdict.Allowed) throw new ArgumentException(verdict.Reason);
        return RunAsync(verdict.Statement, from, to, [], cancellationToken);
    }

    public Task<AnalyticsResult> TopTitlesAsync(DateTimeOffset from, DateTimeOffset to, string? region, string? deviceType, int limit, CancellationToken cancellationToken = default)
    {
        var sql = "SELECT video_id AS title, count(*) AS plays, count(DISTINCT user_id) AS viewers FROM events " +
                  "WHERE event_type = 'video.play.started' AND video_id IS NOT NULL" +
                  (region is null ? "" : " AND region = $region") + (deviceType is null ? "" : " AND device_type = $device_type") +
                  $" GROUP BY video_id ORDER BY plays DESC, title LIMIT {limit.ToString(CultureInfo.InvariantCulture)}";
        var parameters = new List<(string, object?)>();
        if (region is not null) parameters.Add(("region", region));
        if (deviceType is not null) parameters.Add(("device_type", deviceType));
        return RunAsync(sql, from, to, parameters, cancellationToken);
    }

    /// <summary>Per hour: impressions, clicks and spend as the campaign grain counts them (by event id, once).</summary>
    public Task<AnalyticsResult> AdsAsync(string campaign, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
        RunAsync("SELECT strftime(date_trunc('hour', \"timestamp\"), '%Y-%m-%dT%H:00:00Z') AS hour, " +
                 "count(*) FILTER (WHERE event_type = 'ad.impression') AS impressions, " +
                 "count(*) FILTER (WHERE event_type = 'ad.click') AS clicks, " +
                 "coalesce(sum(coalesce(cost_micros, 0)) FILTER (WHERE event_type IN ('ad.impression', 'ad.click')), 0) AS spend_micros " +
                 "FROM events WHERE campaign_id = $campaign AND coalesce(ad_session_id, '') <> '' AND event_type LIKE 'ad.%' " +
                 "GROUP BY 1 ORDER BY 1", from, to, [("campaign", campaign)], cancellationToken);

    private void CheckRange(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from) throw new ArgumentException("to: must be later than from");
        if (to - from > _options.MaxQueryRange) throw new ArgumentException($"to: a query covers at most {_options.MaxQueryRange} (Keystone:Lake:MaxQueryRange)");
    }

    private async Task<AnalyticsResult> RunAsync(string sql, DateTimeOffset from, DateTimeOffset to, IReadOnlyList<(string Name, object? Value)> parameters, CancellationToken cancellationToken)
    {
        CheckRange(from, to);
        var watch = Stopwatch.StartNew();
        var (files, hours) = await FetchWithinAsync(from, to, cancellationToken);
        var result = await Task.Run(() => Execute(sql, from, to, files, parameters), cancellationToken);
        return result with { Hours = hours, Files = files.Sum(f => f.Value.Count), ElapsedMs = watch.Elapsed.TotalMilliseconds };
    }

    /// <summary>The fetch, bounded by <see cref="LakeOptions.StorageTimeout"/>: storage that hangs or fails becomes a
    /// <see cref="LakeUnavailableException"/> the caller gets while it still waits for the answer.</summary>
    private async Task<(Dictionary<string, List<string>> Files, int Hours)> FetchWithinAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.StorageTimeout);
        try
        {
            return await FetchAsync(from, to, deadline.Token);
        }
        catch (Exception e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested && e is OperationCanceledException or AggregateException or RequestFailedException)
        {
            // The SDK reports a cancelled try as any of these, depending on where it was.
            _logger?.LogWarning("Lake query: the storage did not answer the reads of [{From}, {To}) within {Timeout}", from, to, _options.StorageTimeout);
            throw new LakeUnavailableException($"the lake's storage did not answer within {_options.StorageTimeout.TotalSeconds:0.#} s " +
                                               "(Keystone:Lake:StorageTimeout); nothing was queried, try again");
        }
        catch (Exception e) when (e is RequestFailedException or AggregateException or IOException or HttpRequestException
                                  || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // AggregateException: the Azure SDK's retries ran out, each try failing on its own. A cancellation that is
            // neither the deadline's nor the caller's is the SDK's per-try timeout on its last try.
            _logger?.LogWarning(e, "Lake query: the storage failed the reads of [{From}, {To})", from, to);
            var reason = e is RequestFailedException { Status: > 0 } failed ? $"{failed.Status} {failed.ErrorCode}" : ExceptionReason(e);
            throw new LakeUnavailableException($"the lake's storage failed a read ({reason}); nothing was queried, try again");
        }
    }

    private static string ExceptionReason(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: > 0 } a) e = a.InnerExceptions[^1];
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message.Split('\n')[0].Trim();
    }

    /// <summary>The local copies of the range's Parquet files by table, fetched when missing or stale.</summary>
    public async Task<(Dictionary<string, List<string>> Files, int Hours)> FetchAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var blobs = new List<(string Name, string ETag)>();
        var hours = 0;
        // Window results are filed by the hour they were emitted, after their window ended: the hour after the range
        // is read for them too (the view keeps only windows ending in the range).
        for (var hour = Archive.ArchiveStore.HourOf(from); hour < to.AddHours(1); hour = hour.AddHours(1))
        {
            var windowsOnly = hour >= to;
            if (!windowsOnly) hours++;
            try
            {
                await foreach (var blob in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, LakeNames.HourPrefix(hour) + (windowsOnly ? "windows-" : ""), cancellationToken))
                    if (blob.Name.EndsWith(".parquet", StringComparison.Ordinal)) blobs.Add((blob.Name, blob.Properties.ETag?.ToString() ?? ""));
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                break;
            }
        }
        var files = new Dictionary<string, List<string>> { [LakeSchema.EventsTable] = [], [LakeSchema.WindowsTable] = [] };
        var locals = new string[blobs.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, blobs.Count), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (i, ct) => locals[i] = await CachedAsync(blobs[i].Name, blobs[i].ETag, ct));
        for (var i = 0; i < blobs.Count; i++)
            files[Path.GetFileName(blobs[i].Name).StartsWith("windows-", StringComparison.Ordinal) ? LakeSchema.WindowsTable : LakeSchema.EventsTable].Add(locals[i]);
        return (files, hours);
    }

    private async Task<string> CachedAsync(string name, string etag, CancellationToken cancellationToken)
    {
        var local = Path.Combine(CacheDirectory, name.Replace('/', Path.DirectorySeparatorChar));
        var tag = local + ".etag";
        if (File.Exists(local) && File.Exists(tag) && await File.ReadAllTextAsync(tag, cancellationToken) == etag) return local;
        Directory.CreateDirectory(Path.GetDirectoryName(local)!);
        var temp = local + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            await _container.GetBlobClient(name).DownloadToAsync(temp, cancellationToken);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        // Rename is atomic: a query reading the old copy keeps it open; the next one sees the new.
        File.Move(temp, local, overwrite: true);
        await File.WriteAllTextAsync(tag, etag, cancellationToken);
        return local;
    }

    public void ClearCache()
    {
        if (Directory.Exists(CacheDirectory)) Directory.Delete(CacheDirectory, recursive: true);
        Directory.CreateDirectory(CacheDirectory);
    }

    private AnalyticsResult Execute(string sql, DateTimeOffset from, DateTimeOffset to, Dictionary<string, List<string>> files, IReadOnlyList<(string Name, object? Value)> parameters)
    {
        using var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        LakeCompactor.Execute(db, $"SET memory_limit = '{_options.MemoryLimit}'; SET threads = {_options.QueryThreads}; " +
                                  "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false");
        foreach (var (table, columns) in new[] { (LakeSchema.EventsTable, LakeSchema.EventColumns), (LakeSchema.WindowsTable, LakeSchema.WindowColumns) })
        {
            var time = LakeSchema.TimeColumn(table);
            var body = files[table].Count == 0
                ? LakeSchema.EmptySelect(columns)
                : $"SELECT * FROM read_parquet([{string.Join(", ", files[table].Select(f => $"'{LakeCompactor.Escape(f)}'"))}])";
            LakeCompactor.Execute(db, $"CREATE VIEW {table} AS SELECT * FROM ({body}) WHERE \"{time}\" >= TIMESTAMP '{LakeSchema.Utc(from)}' AND \"{time}\" < TIMESTAMP '{LakeSchema.Utc(to)}'");
        }
        // The second wall: whatever the guard missed can read nothing but the cache and change nothing.
        LakeCompactor.Execute(db, $"SET allowed_directories = ['{LakeCompactor.Escape(CacheDirectory + Path.DirectorySeparatorChar)}']; " +
                                  "SET enable_external_access = false; SET lock_configuration = true");

        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.UseStreamingMode = true;
        foreach (var (name, value) in parameters) cmd.Parameters.Add(new DuckDBParameter(name, value));
        var timedOut = false;
        using var timer = new Timer(_ =>
        {
            timedOut = true;
            try { cmd.Cancel(); } catch (Exception) { /* the query may have just finished */ }
        }, null, _options.QueryTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            using var reader = cmd.ExecuteReader();
            var columns = Enumerable.Range(0, reader.FieldCount).Select(i => new AnalyticsColumn(reader.GetName(i), reader.GetDataTypeName(i))).ToList();
            var rows = new List<object?[]>();
            while (reader.Read())
            {
                if (rows.Count == _options.MaxRows)
                    throw new ArgumentException($"the result has more than {_options.MaxRows} rows (Keystone:Lake:MaxRows); aggregate, or add a LIMIT");
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++) row[i] = reader.IsDBNull(i) ? null : Normalize(reader.GetValue(i));
                rows.Add(row);
            }
            if (timedOut) throw TimedOut();
            return new AnalyticsResult(columns, rows, 0, 0, 0);
        }
        catch (Exception e) when (timedOut && e is not ArgumentException)
        {
            // Interrupted: DuckDB reports it as an error or a cancellation, depending on where the query was.
            throw TimedOut();
        }
        catch (DuckDBException e)
        {
            throw new ArgumentException("sql: " + e.Message.Split('\n')[0].Trim());
        }

        ArgumentException TimedOut() => new($"the query ran longer than {_options.QueryTimeout.TotalSeconds:0.#} s (Keystone:Lake:QueryTimeout) and was stopped");
    }

    private static object? Normalize(object value) => value switch
    {
        string or long or double or bool => value,
        int or short or sbyte or byte or ushort or uint => Convert.ToInt64(value, CultureInfo.InvariantCulture),
        ulong u => u <= long.MaxValue ? (long)u : u.ToString(CultureInfo.InvariantCulture),
        BigInteger b => b >= long.MinValue && b <= long.MaxValue ? (long)b : b.ToString(CultureInfo.InvariantCulture),
        float f => (double)f,
        decimal d => (double)d,
        DateTime t => DateTime.SpecifyKind(t, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        DateTimeOffset t => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        Guid g => g.ToString("D"),
        System.Collections.IEnumerable e when value is not string => System.Text.Json.JsonSerializer.Serialize(e.Cast<object?>().Select(x => x is null ? null : Normalize(x))),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };
}
