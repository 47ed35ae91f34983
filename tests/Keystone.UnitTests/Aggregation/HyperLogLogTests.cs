using Keystone.Aggregation;

namespace Keystone.UnitTests.Aggregation;

public class HyperLogLogTests
{
    private static HyperLogLog Of(IEnumerable<string> values)
    {
        var hll = new HyperLogLog();
        foreach (var v in values) hll.Add(v);
        return hll;
    }

    private static IEnumerable<string> Users(int from, int count) => Enumerable.Range(from, count).Select(i => $"user-{i}");

    [Fact]
    public void Small_counts_are_exact()
    {
        var hll = new HyperLogLog();
        Assert.Equal(0, hll.Count());
        for (var i = 1; i <= 16; i++)
        {
            hll.Add($"user-{i}");
            Assert.Equal(i, hll.Count());
        }
        Assert.StartsWith("x:", hll.Export());

        // The 17th value switches to registers (written sparse while few are set).
        hll.Add("user-17");
        Assert.StartsWith("s:", hll.Export());
        Assert.Equal(17, HyperLogLog.Import(hll.Export()).Count());
    }

    [Fact]
    public void A_hundred_thousand_values_are_estimated_within_three_percent()
    {
        var count = Of(Users(0, 100_000)).Count();

        Assert.InRange(count, 97_000, 103_000);
    }

    [Fact]
    public void Adding_a_value_again_changes_nothing()
    {
        var small = Of(["a", "b"]);
        small.Add("a");
        Assert.Equal(2, small.Count());
        Assert.Equal(Of(["a", "b"]).Export(), small.Export());

        var large = Of(Users(0, 5_000));
        var before = large.Export();
        foreach (var u in Users(0, 5_000)) large.Add(u);
        Assert.Equal(before, large.Export());
    }

    [Fact]
    public void Merging_small_sets_gives_the_exact_union()
    {
        var a = Of(["x", "y"]);
        a.Merge(Of(["y", "z"]));

        Assert.Equal(3, a.Count());
    }

    [Fact]
    public void Merging_equals_counting_the_union()
    {
        // Registers merge by maximum, so the merged sketch is identical to one fed every value.
        var a = Of(Users(0, 60_000));
        var b = Of(Users(40_000, 60_000));
        var union = Of(Users(0, 100_000));

        a.Merge(b);

        Assert.Equal(union.Export(), a.Export());
        Assert.Equal(union.Count(), a.Count());
        Assert.InRange(a.Count(), 97_000, 103_000);
    }

    [Fact]
    public void Merging_mixes_small_and_large_sketches()
    {
        var small = Of(Users(0, 10));
        var large = Of(Users(5, 1_000));
        var union = Of(Users(0, 1_005));

        var smallIntoLarge = Of(Users(5, 1_000));
        smallIntoLarge.Merge(small);
        small.Merge(large);

        Assert.Equal(union.Export(), smallIntoLarge.Export());
        Assert.Equal(union.Export(), small.Export());
    }

    [Fact]
    public void The_exact_form_round_trips()
    {
        var hll = Of(["a", "b", "c"]);
        var text = hll.Export();

        var restored = HyperLogLog.Import(text);

        Assert.Equal(3, restored.Count());
        Assert.Equal(text, restored.Export());
        restored.Add("b");
        Assert.Equal(3, restored.Count());
    }

    [Fact]
    public void The_register_form_round_trips()
    {
        var hll = Of(Users(0, 10_000));
        var text = hll.Export();

        var restored = HyperLogLog.Import(text);

        Assert.StartsWith("r:", text);
        Assert.Equal(text, restored.Export());
        Assert.Equal(hll.Count(), restored.Count());
        restored.Add("user-1");
        Assert.Equal(text, restored.Export());
    }

    [Fact]
    public void A_sketch_with_few_registers_set_is_written_sparse_and_restores_the_same_registers()
    {
        var hll = Of(Users(0, 300));
        var text = hll.Export();

        var restored = HyperLogLog.Import(text);

        Assert.StartsWith("s:", text);
        // About 290 registers of 4,096 set: three bytes each instead of 4,096 bytes.
        Assert.InRange(text.Length, 2 + 4 * 250, 2 + 4 * 300);
        Assert.Equal(hll.Count(), restored.Count());
        Assert.Equal(text, restored.Export());
        // The same registers: merged into a dense sketch, it changes nothing.
        var dense = Of(Users(0, 10_000));
        var before = dense.Export();
        dense.Merge(restored);
        Assert.Equal(before, dense.Export());
        restored.Add("user-1");
        Assert.Equal(text, restored.Export());
    }

    [Fact]
    public void Bad_sparse_registers_are_refused()
    {
        Assert.Throws<FormatException>(() => HyperLogLog.Import("s:" + Convert.ToBase64String(new byte[4])));
        // Index 4,096 does not exist; rank 0 is not a set register; rank 54 cannot come from a 52-bit remainder.
        Assert.Throws<FormatException>(() => HyperLogLog.Import("s:" + Convert.ToBase64String([0x00, 0x10, 1])));
        Assert.Throws<FormatException>(() => HyperLogLog.Import("s:" + Convert.ToBase64String([1, 0, 0])));
        Assert.Throws<FormatException>(() => HyperLogLog.Import("s:" + Convert.ToBase64String([1, 0, 54])));
        Assert.Throws<FormatException>(() => HyperLogLog.Import("q:AAAA"));
    }

    [Fact]
    public void Nothing_imports_as_empty_and_bad_registers_are_refused()
    {
        Assert.Equal(0, HyperLogLog.Import(null).Count());
        Assert.Equal(0, HyperLogLog.Import("").Count());
        Assert.Equal(0, HyperLogLog.Import("x:").Count());
        Assert.Throws<FormatException>(() => HyperLogLog.Import("r:" + Convert.ToBase64String(new byte[100])));
    }
}
