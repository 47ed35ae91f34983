namespace Keystone.Lake;

/// <summary>A read-only SQL query over the columnar lake: views <c>events</c> and <c>activity_windows</c> cover [From, To).</summary>
[GenerateSerializer, Immutable]
public sealed record AnalyticsQuery(
    [property: Id(0)] string Sql,
    [property: Id(1)] DateTimeOffset From,
    [property: Id(2)] DateTimeOffset To);

[GenerateSerializer, Immutable]
public sealed record AnalyticsColumn(
    [property: Id(0)] string Name,
    [property: Id(1)] string Type);

/// <summary>
/// A query's answer. Values are null, long, double, bool or string (timestamps as ISO-8601 UTC, anything else as DuckDB
/// prints it), so they cross Orleans and JSON unchanged.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record AnalyticsResult(
    [property: Id(0)] IReadOnlyList<AnalyticsColumn> Columns,
    [property: Id(1)] IReadOnlyList<object?[]> Rows,
    [property: Id(2)] int Hours,
    [property: Id(3)] int Files,
    [property: Id(4)] double ElapsedMs);

/// <summary>What one compaction run did.</summary>
[GenerateSerializer, Immutable]
public sealed record CompactionReport(
    [property: Id(0)] int Compacted,
    [property: Id(1)] int UpToDate,
    [property: Id(2)] int NotSealed,
    [property: Id(3)] long Rows,
    [property: Id(4)] long WindowRows,
    [property: Id(5)] long Duplicates,
    [property: Id(6)] long Unreadable,
    [property: Id(7)] int RawSegmentsDeleted,
    [property: Id(8)] IReadOnlyList<string> Files);

/// <summary>
/// The lake's storage did not answer a query's reads (listing its hours, fetching changed Parquet files) in time, or
/// failed them. Nothing was queried; asking again is safe. REST answers 503, <c>keystone query</c> exits 3.
/// </summary>
[GenerateSerializer]
public sealed class LakeUnavailableException : Exception
{
    public LakeUnavailableException() { }

    public LakeUnavailableException(string message) : base(message) { }
}

/// <summary>Queries and reports over the Parquet lake (a stateless worker: each silo answers from its own cache).</summary>
public interface IAnalyticsGrain : IGrainWithIntegerKey
{
    /// <summary>Runs a guarded SELECT. A refused query (guard, time limit, row cap, range) throws <see cref="ArgumentException"/> naming the reason;
    /// storage that does not answer in time throws <see cref="LakeUnavailableException"/>.</summary>
    Task<AnalyticsResult> Query(AnalyticsQuery query);

    /// <summary>Most-played titles (video.play.started) in [from, to), optionally in one region and device type.</summary>
    Task<AnalyticsResult> TopTitles(DateTimeOffset from, DateTimeOffset to, string? region, string? deviceType, int limit);

    /// <summary>Impressions, clicks and spend per hour of one campaign in [from, to).</summary>
    Task<AnalyticsResult> Ads(string campaign, DateTimeOffset from, DateTimeOffset to);
}

/// <summary>Compacts sealed archive hours into Parquet (one activation: compactions never race).</summary>
public interface ILakeCompactorGrain : IGrainWithIntegerKey
{
    /// <summary>Compacts every sealed (hour, partition) overlapping [from, to) whose Parquet is missing or stale; applies raw retention.
    /// <paramref name="includeOpen"/>: hours not sealed yet too (they are compacted again, whole, once they change).</summary>
    [ResponseTimeout("00:15:00")] // a first run over two days of a busy lake takes minutes
    Task<CompactionReport> Compact(DateTimeOffset from, DateTimeOffset to, bool includeOpen = false);
}
