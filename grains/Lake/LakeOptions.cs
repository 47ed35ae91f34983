using System.ComponentModel.DataAnnotations;

namespace Keystone.Lake;

/// <summary>The columnar lake and its SQL. Section <c>Keystone:Lake</c>.</summary>
public sealed class LakeOptions
{
    public const string Section = "Keystone:Lake";

    /// <summary>Off: no background compaction (a call to <c>POST /v1/lake/compact</c> still compacts).</summary>
    public bool CompactionEnabled { get; set; } = true;

    /// <summary>How often each silo asks the compactor to look for sealed hours.</summary>
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>An hour is sealed this long after its end: the writers append at every checkpoint barrier (10 s), so
    /// five minutes leaves room for stragglers. A later append changes the hour's raw segments, and the next run
    /// compacts the hour again (whole), so a late event is never lost, only delayed.</summary>
    public TimeSpan SealAfter { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How far back the background compaction looks.</summary>
    public TimeSpan Lookback { get; set; } = TimeSpan.FromHours(48);

    /// <summary>Raw gzip segments of a compacted hour are deleted this long after the hour's end; null (the default)
    /// keeps them for ever. Replay reads the Parquet form of an hour whose raw segments are gone.</summary>
    public TimeSpan? RawRetention { get; set; }

    /// <summary>Where the query engine keeps its copies of Parquet files; empty: a folder under the system temp path.</summary>
    public string? CacheDirectory { get; set; }

    /// <summary>A query running longer than this is interrupted and refused.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A query's reads of the lake (listing its hours, fetching changed Parquet files) must be done within
    /// this, or the query answers "unavailable" (REST 503). A storage request with no answer within a quarter of it is
    /// sent again. With <see cref="QueryTimeout"/> it stays below Orleans' 30 s response timeout, so that a caller
    /// whose lake storage hangs gets that answer instead of losing the call: the Azure SDK's own default waits 100 s
    /// per try.</summary>
    public TimeSpan StorageTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A result with more rows than this is refused (aggregate, or add a LIMIT).</summary>
    [Range(1, 1_000_000)]
    public int MaxRows { get; set; } = 10_000;

    /// <summary>The longest [from, to) one query may cover.</summary>
    public TimeSpan MaxQueryRange { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The longest SQL text accepted.</summary>
    [Range(16, 1_000_000)]
    public int MaxSqlLength { get; set; } = 20_000;

    /// <summary>DuckDB's memory limit per query, e.g. "1GB".</summary>
    public string MemoryLimit { get; set; } = "1GB";

    /// <summary>DuckDB threads per query. With one, a query runs on the thread that asked, and nothing of it outlives
    /// the call. With more, DuckDB's workers stop a query at <see cref="QueryTimeout"/> only at their next check; twice
    /// (stop 44's CI and an earlier one) the lake call that followed such a stopped cross join over 100 million rows
    /// waited past Orleans' 30 s timeout on a 2-core machine. Not reproduced on demand.</summary>
    [Range(1, 256)]
    public int QueryThreads { get; set; } = 1;

    /// <summary>Orleans' default response timeout, which a lake call must answer within.</summary>
    public static readonly TimeSpan OrleansResponseTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The per-try timeout of the query engine's storage requests.</summary>
    public TimeSpan StorageTryTimeout => TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, StorageTimeout.Ticks / 4));

    public IEnumerable<string> Problems()
    {
        if (CompactionInterval <= TimeSpan.Zero) yield return $"{Section}:CompactionInterval must be positive.";
        if (SealAfter < TimeSpan.Zero) yield return $"{Section}:SealAfter must not be negative.";
        if (Lookback <= TimeSpan.Zero) yield return $"{Section}:Lookback must be positive.";
        if (RawRetention is { } r && r < SealAfter) yield return $"{Section}:RawRetention must be at least SealAfter ({SealAfter}).";
        if (QueryTimeout <= TimeSpan.Zero) yield return $"{Section}:QueryTimeout must be positive.";
        if (StorageTimeout <= TimeSpan.Zero) yield return $"{Section}:StorageTimeout must be positive.";
        else if (QueryTimeout > TimeSpan.Zero && StorageTimeout + QueryTimeout >= OrleansResponseTimeout)
            yield return $"{Section}:StorageTimeout + QueryTimeout must stay below Orleans' response timeout ({OrleansResponseTimeout.TotalSeconds:0} s), " +
                         $"got {StorageTimeout.TotalSeconds:0.#} s + {QueryTimeout.TotalSeconds:0.#} s: a caller would lose the call before the query answers.";
        if (MaxQueryRange <= TimeSpan.Zero) yield return $"{Section}:MaxQueryRange must be positive.";
        if (!System.Text.RegularExpressions.Regex.IsMatch(MemoryLimit ?? "", @"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"))
            yield return $"{Section}:MemoryLimit must look like 512MB or 1GB, got '{MemoryLimit}'.";
    }
}
