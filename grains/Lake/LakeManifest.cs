namespace Keystone.Lake;

/// <summary>One raw segment as compaction read it: its size and version (ETag) say whether it changed since.</summary>
public sealed record SegmentVersion(string Name, long Bytes, string Version, bool Deleted = false);

/// <summary>A Parquet file of the lake and what it holds.</summary>
public sealed record LakeFile(string Name, string Table, long Rows, long Bytes, DateTime? MinTime, DateTime? MaxTime);

/// <summary>
/// What the Parquet form of one (hour, partition) was made from and holds: <c>parquet/yyyy/MM/dd/HH/manifest-p{n}.json</c>.
/// Compaction is idempotent through it: an hour whose raw segments are exactly the ones listed (same size and
/// version) is not compacted again; one with a changed or new segment is compacted again, whole, into the same files.
/// </summary>
public sealed record LakeManifest(
    DateTimeOffset Hour,
    int Partition,
    IReadOnlyList<SegmentVersion> Sources,
    IReadOnlyList<LakeFile> Files,
    long Duplicates,
    long Unreadable,
    DateTimeOffset CompactedAt)
{
    /// <summary>True when the Parquet files already hold exactly what the current raw segments hold.</summary>
    public bool Covers(IReadOnlyList<SegmentVersion> current)
    {
        var known = Sources.ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (var segment in current)
            if (!known.TryGetValue(segment.Name, out var s) || s.Deleted || s.Bytes != segment.Bytes || s.Version != segment.Version) return false;
        // A listed live segment that is gone without being deleted by retention means the raw data changed under us.
        var names = current.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        return Sources.All(s => s.Deleted || names.Contains(s.Name));
    }

    /// <summary>Raw segments retention has deleted: their events now exist only in the Parquet files.</summary>
    public bool HasDeletedSources => Sources.Any(s => s.Deleted);

    public long Rows(string table) => Files.Where(f => f.Table == table).Sum(f => f.Rows);
}

/// <summary>Blob names of the columnar lake, next to the raw archive in the lake container.</summary>
public static class LakeNames
{
    public const string Root = "parquet/";

    public static string HourPrefix(DateTimeOffset hour) => $"{Root}{hour.UtcDateTime:yyyy/MM/dd/HH}/";

    public static string Manifest(DateTimeOffset hour, int partition) => $"{HourPrefix(hour)}manifest-p{partition}.json";

    public static string File(DateTimeOffset hour, int partition, string table) =>
        $"{HourPrefix(hour)}{(table == LakeSchema.WindowsTable ? "windows" : "events")}-p{partition}.parquet";
}
