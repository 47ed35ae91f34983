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
        Assert.Equal(new[] { 2L }, index.Referenced().ToArray());
        Assert.Equal((2L, 6L), (index.LiveBytes, index.StoredBytes));

        // A base holds every live state: what it does not name no longer exists.
        Apply(index, 3, true, State("c", 5, "c5"));
        Assert.False(index.TryGet("a", out _));
        Assert.True(index.TryGet("c", out var c));
        Assert.Equal(5, c.Version);
        Assert.True(index.IsBase(3));
        Assert.Equal(new[] { 3L }, index.Segments.ToArray());
        Assert.Equal((2L, 2L), (index.LiveBytes, index.StoredBytes));
    }

    [Fact]
    public void A_delta_whose_states_were_all_written_again_is_dead_and_is_forgotten_with_its_bytes()
    {
        var index = new SnapshotIndex();
        Apply(index, 1, false, State("a", 1, "aaaa"), State("b", 1, "bbbb"));
        Apply(index, 2, false, State("a", 2, "AAAAA"));
        // "b" still lives in segment 1.
        Assert.Empty(index.Dead());
        Apply(index, 3, false, State("b", 2, "BB"));
        Assert.Equal(new[] { 1L }, index.Dead());
        Assert.Equal(8, index.GarbageBytes);

        Assert.Equal(8, index.Forget(1));
        Assert.Equal(new[] { 2L, 3L }, index.Segments.ToArray());
        Assert.Equal((7L, 7L, 0L), (index.LiveBytes, index.StoredBytes, index.GarbageBytes));
        Assert.True(index.TryGet("a", out var a) && a.Segment == 2);
        Assert.True(index.TryGet("b", out var b) && b.Segment == 3);
        // A segment that still holds a live state is never forgotten.
        Assert.Throws<InvalidOperationException>(() => index.Forget(2));
    }

    [Fact]
    public void A_delta_that_clears_a_state_and_the_base_are_never_dead()
    {
        // Deleting segment 3 would bring "a" back from the base at the next reload; deleting the base would make a
        // reload start from whatever older segments a failed compaction left behind.
        var index = new SnapshotIndex();
        Apply(index, 1, true, State("a", 1, "a1"), State("b", 1, "b1"));
        Apply(index, 2, false, State("b", 2, "b2"));
        Apply(index, 3, false, State("a", 2, null));
        Assert.Equal(1, index.Count);
        Assert.Empty(index.Dead());
        Assert.Throws<InvalidOperationException>(() => index.Forget(1));
        Assert.Throws<InvalidOperationException>(() => index.Forget(3));

        // The same records applied to a fresh index (a reload) give the same bucket.
        var reloaded = new SnapshotIndex();
        Apply(reloaded, 1, true, State("a", 1, "a1"), State("b", 1, "b1"));
        Apply(reloaded, 2, false, State("b", 2, "b2"));
        Apply(reloaded, 3, false, State("a", 2, null));
        Assert.Equal(index.Live.OrderBy(kv => kv.Key), reloaded.Live.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void A_bucket_compacts_when_it_holds_as_many_overwritten_bytes_as_live_ones_or_when_its_segments_are_many()
    {
        var index = new SnapshotIndex();
        // Three segments of different states: nothing to gain from folding them.
        Apply(index, 1, false, State("a", 1, "aaaa"));
        Apply(index, 2, false, State("b", 1, "bbbb"));
        Apply(index, 3, false, State("c", 1, "cccc"));
        Assert.False(index.ShouldCompact(3));

        // A 40-byte base, then small rewrites of "a": 6 overwritten bytes against 34 live ones are not worth it...
        Apply(index, 4, true, State("a", 1, new string('a', 20)), State("b", 1, new string('b', 20)));
        for (var s = 5; s < 8; s++) Apply(index, s, false, State("a", s, "a" + s));
        // (segments 5 and 6 are dead now; the bucket would have deleted them)
        Assert.Equal(new[] { 5L, 6L }, index.Dead());
        Assert.Equal((22L, 46L), (index.LiveBytes, index.StoredBytes));
        Assert.True(index.ShouldCompact(3));
        foreach (var dead in index.Dead()) index.Forget(dead);
        Assert.Equal((22L, 42L, 20L), (index.LiveBytes, index.StoredBytes, index.GarbageBytes));
        // ...two segments are fewer than three,
        Assert.False(index.ShouldCompact(3));
        // and with a third one, 20 overwritten bytes against 22 live ones are still not.
        Apply(index, 8, false, State("c", 1, "cc"));
        Assert.False(index.ShouldCompact(3));
        // Rewriting "b" leaves nothing live in the base: 40 overwritten bytes against 6 live ones, fold.
        Apply(index, 9, false, State("b", 2, "bb"));
        Assert.True(index.ShouldCompact(3));

        // More than 4 x 3 segments are folded whatever their size: a reload reads every one.
        var many = new SnapshotIndex();
        for (var s = 1; s <= 12; s++) Apply(many, s, false, State("k" + s, 1, "v"));
        Assert.False(many.ShouldCompact(3));
        Apply(many, 13, false, State("k13", 1, "v"));
        Assert.True(many.ShouldCompact(3));
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
