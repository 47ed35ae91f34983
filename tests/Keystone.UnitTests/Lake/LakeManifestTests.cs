using Keystone.Lake;

namespace Keystone.UnitTests.Lake;

public class LakeManifestTests
{
    private static readonly DateTimeOffset Hour = new(2026, 11, 27, 4, 0, 0, TimeSpan.Zero);

    private static LakeManifest Of(params SegmentVersion[] sources) =>
        new(Hour, 1, sources, [new LakeFile(LakeNames.File(Hour, 1, LakeSchema.EventsTable), LakeSchema.EventsTable, 10, 1_000, null, null)], 0, 0, Hour.AddHours(2));

    [Fact]
    public void The_same_segments_are_covered_so_a_rerun_compacts_nothing()
    {
        var a = new SegmentVersion("archive/2026/11/27/04/p1-0000.jsonl.gz", 500, "0x1");
        var b = new SegmentVersion("archive/2026/11/27/04/p1-0001.jsonl.gz", 700, "0x2");
        var manifest = Of(a, b);
        Assert.True(manifest.Covers([a, b]));
        Assert.True(manifest.Covers([b, a]));
    }

    [Fact]
    public void An_appended_changed_new_or_vanished_segment_is_not_covered()
    {
        var a = new SegmentVersion("archive/2026/11/27/04/p1-0000.jsonl.gz", 500, "0x1");
        var manifest = Of(a);
        Assert.False(manifest.Covers([a with { Bytes = 650, Version = "0x9" }]), "a late append");
        Assert.False(manifest.Covers([a with { Version = "0x9" }]), "rewritten, same size");
        Assert.False(manifest.Covers([a, new SegmentVersion("archive/2026/11/27/04/p1-0001.jsonl.gz", 10, "0x3")]), "a new part");
        Assert.False(manifest.Covers([]), "a source removed by someone else than retention");
    }

    [Fact]
    public void Segments_deleted_by_retention_stay_covered_but_a_segment_written_after_is_not()
    {
        var a = new SegmentVersion("archive/2026/11/27/04/p1-0000.jsonl.gz", 500, "0x1");
        var manifest = Of(a with { Deleted = true });
        Assert.True(manifest.HasDeletedSources);
        Assert.True(manifest.Covers([]));
        Assert.False(manifest.Covers([new SegmentVersion("archive/2026/11/27/04/p1-0001.jsonl.gz", 10, "0x3")]));
        // A blob recreated under a deleted segment's name is new data too.
        Assert.False(manifest.Covers([a]));
    }

    [Fact]
    public void Names_keep_the_hour_partitioning()
    {
        Assert.Equal("parquet/2026/11/27/04/events-p1.parquet", LakeNames.File(Hour, 1, LakeSchema.EventsTable));
        Assert.Equal("parquet/2026/11/27/04/windows-p1.parquet", LakeNames.File(Hour, 1, LakeSchema.WindowsTable));
        Assert.Equal("parquet/2026/11/27/04/manifest-p1.json", LakeNames.Manifest(Hour, 1));
    }
}
