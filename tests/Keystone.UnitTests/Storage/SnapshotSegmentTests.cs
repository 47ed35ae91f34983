using System.Text;
using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public sealed class SnapshotSegmentTests
{
    private static SnapshotRecord State(string key, long version, string? json) =>
        new(key, version, json is null ? default(ReadOnlyMemory<byte>?) : Encoding.UTF8.GetBytes(json));

    [Fact]
    public void A_segment_round_trips_and_each_state_is_found_by_offset_and_length()
    {
        var bytes = SnapshotSegment.Encode([State("activity|user/josé", 3, """{"a":1}"""), State("graph|video/v-1", 1, null), State("stats|video/v-1", 7, "")], isBase: true);

        var (isBase, records) = SnapshotSegment.Decode(bytes, "s");

        Assert.True(isBase);
        Assert.Equal(["activity|user/josé", "graph|video/v-1", "stats|video/v-1"], records.Select(r => r.Record.Key));
        Assert.Equal([3L, 1L, 7L], records.Select(r => r.Record.Version));
        var (first, offset) = records[0];
        Assert.Equal("""{"a":1}""", Encoding.UTF8.GetString(bytes, offset, first.Data!.Value.Length));
        Assert.Null(records[1].Record.Data);
        Assert.Equal(0, records[2].Record.Data!.Value.Length);
    }

    [Fact]
    public void A_truncated_or_foreign_blob_is_refused_with_its_name()
    {
        var bytes = SnapshotSegment.Encode([State("k", 1, "0123456789")], isBase: false);
        var torn = Assert.Throws<InvalidDataException>(() => SnapshotSegment.Decode(bytes.AsMemory(0, bytes.Length - 3), "0001/000000000004-d"));
        Assert.Contains("0001/000000000004-d", torn.Message);
        Assert.Contains("record 1 of 1", torn.Message);
        Assert.Contains("KSS1", Assert.Throws<InvalidDataException>(() => SnapshotSegment.Decode("{\"json\":1}"u8.ToArray(), "x")).Message);
    }

    [Fact]
    public void Later_records_win_cleared_states_disappear_and_a_base_resets_the_bucket()
    {
        var index = new SnapshotIndex();
        Apply(index, 1, false, State("a", 1, "a1"), State("b", 1, "b1"));
        Apply(index, 2, false, State("a", 2, "a2"), State("b", 2, null));

        Assert.True(index.TryGet("a", out var a));
        Assert.Equal((2L, 2L), (a.Segment, a.Version));
        Assert.False(index.TryGet("b", out _));
        Assert.Equal(2, index.DeltasSinceBase);
        Assert.Equal(new[] { 2L }, index.Referenced().ToArray());

        // A base holds every live state: what it does not name no longer exists.
        Apply(index, 3, true, State("c", 5, "c5"));
        Assert.False(index.TryGet("a", out _));
        Assert.True(index.TryGet("c", out var c));
        Assert.Equal(5, c.Version);
        Assert.Equal(0, index.DeltasSinceBase);
        Assert.Equal(new[] { 3L }, index.Segments.ToArray());
    }

    [Fact]
    public void A_bucket_compacts_when_its_deltas_hold_as_much_as_its_base_or_when_they_are_many()
    {
        var index = new SnapshotIndex();
        // No base yet: the count alone decides.
        Apply(index, 1, false, State("a", 1, "aaaa"));
        Apply(index, 2, false, State("b", 1, "bbbb"));
        Assert.False(index.ShouldCompact(3));
        Apply(index, 3, false, State("c", 1, "cccc"));
        Assert.True(index.ShouldCompact(3));

        // A 40-byte base: three small deltas are not worth rewriting it for...
        Apply(index, 4, true, State("a", 1, new string('a', 20)), State("b", 1, new string('b', 20)));
        Assert.Equal(40, index.BaseBytes);
        for (var s = 5; s < 8; s++) Apply(index, s, false, State("a", s, "a" + s));
        Assert.Equal((3, 6L), (index.DeltasSinceBase, index.DeltaBytesSinceBase));
        Assert.False(index.ShouldCompact(3));
        // ...deltas as large as the base are,
        Apply(index, 8, false, State("b", 2, new string('x', 34)));
        Assert.True(index.ShouldCompact(3));

        // and so are 4 x 3 deltas, however small.
        Apply(index, 9, true, State("a", 1, new string('a', 1_000)));
        for (var s = 10; s < 21; s++) Apply(index, s, false, State("b", s, "b"));
        Assert.False(index.ShouldCompact(3));
        Apply(index, 21, false, State("b", 21, "b"));
        Assert.True(index.ShouldCompact(3));
    }

    [Theory]
    [InlineData("0003/000000000012-d", true, 12L, false)]
    [InlineData("0003/000000000013-b", true, 13L, true)]
    [InlineData("activity-user/alice.json", false, 0L, false)]
    [InlineData("0003/00000000001x-d", false, 0L, false)]
    [InlineData("0003/000000000012-x", false, 0L, false)]
    public void Segment_names_sort_in_write_order_and_other_blobs_are_ignored(string name, bool parsed, long segment, bool isBase)
    {
        Assert.Equal(parsed, SnapshotStore.TryParseName(name, out var s, out var b));
        if (parsed) Assert.Equal((segment, isBase), (s, b));
        Assert.Equal("0003/000000000012-d", SnapshotStore.SegmentName(3, 12, isBase: false));
    }

    private static void Apply(SnapshotIndex index, long segment, bool isBase, params SnapshotRecord[] records)
    {
        var bytes = SnapshotSegment.Encode(records, isBase);
        var decoded = SnapshotSegment.Decode(bytes, segment.ToString());
        index.Apply(segment, decoded.IsBase, decoded.Records);
    }
}
