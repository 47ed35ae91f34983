namespace Keystone.UnitTests.Metrics;

public class LatencyHistogramTests
{
    private static LatencyHistogram Uniform(int from, int to)
    {
        var h = new LatencyHistogram();
        for (var us = from; us <= to; us++) h.Record(us);
        return h;
    }

    [Theory]
    [InlineData(0.50, 5.0)]
    [InlineData(0.90, 9.0)]
    [InlineData(0.99, 9.9)]
    [InlineData(0.999, 9.99)]
    [InlineData(0.10, 1.0)]
    [InlineData(0.01, 0.1)]
    public void Percentiles_of_a_uniform_distribution_are_within_seven_percent(double q, double expectedMillis)
    {
        var snapshot = Uniform(1, 10_000).Snapshot();
        var actual = snapshot.Percentile(q);
        Assert.InRange(actual, expectedMillis * 0.93, expectedMillis * 1.07);
    }

    [Fact]
    public void Count_sum_mean_and_max_are_exact()
    {
        var snapshot = Uniform(1, 10_000).Snapshot();
        Assert.Equal(10_000, snapshot.Count);
        Assert.Equal(50_005_000, snapshot.SumMicros);
        Assert.Equal(10_000, snapshot.MaxMicros);
        Assert.Equal(5.0005, snapshot.MeanMillis, 10);
        Assert.Equal(10.0, snapshot.MaxMillis);
        // The top percentile reports its bucket's midpoint (9983 µs), capped by the maximum.
        Assert.Equal(9.983, snapshot.Percentile(1.0));
    }

    [Fact]
    public void Small_values_are_exact()
    {
        var h = new LatencyHistogram();
        h.Record(7);
        h.Record(7);
        h.Record(31);
        var s = h.Snapshot();
        Assert.Equal(0.007, s.Percentile(0.5));
        Assert.Equal(0.031, s.Percentile(1.0));
        Assert.Equal([7, 31], s.Indexes);
        Assert.Equal([2L, 1L], s.Counts);
    }

    [Fact]
    public void Percentiles_never_exceed_the_maximum()
    {
        var h = new LatencyHistogram();
        // 4900 µs falls in the bucket [4864, 5120) whose midpoint 4991 would overstate it.
        h.Record(4900);
        Assert.Equal(4.9, h.Snapshot().Percentile(0.5));
    }

    [Fact]
    public void Empty_snapshot_reports_zero()
    {
        Assert.Equal(0, LatencySnapshot.Empty.Percentile(0.99));
        Assert.Equal(0, new LatencyHistogram().Snapshot().Percentile(0.5));
        Assert.Equal(0, LatencySnapshot.Empty.MeanMillis);
    }

    [Fact]
    public void Merging_snapshots_equals_recording_everything_in_one()
    {
        var a = Uniform(1, 3_000);
        var b = new LatencyHistogram();
        for (var us = 2_000; us <= 250_000; us += 7) b.Record(us);
        var both = Uniform(1, 3_000);
        for (var us = 2_000; us <= 250_000; us += 7) both.Record(us);

        var merged = LatencySnapshot.Merge([a.Snapshot(), b.Snapshot()]);
        var expected = both.Snapshot();

        Assert.Equal(expected.Indexes, merged.Indexes);
        Assert.Equal(expected.Counts, merged.Counts);
        Assert.Equal((expected.Count, expected.SumMicros, expected.MaxMicros), (merged.Count, merged.SumMicros, merged.MaxMicros));
        foreach (var q in new[] { 0.5, 0.9, 0.99 }) Assert.Equal(expected.Percentile(q), merged.Percentile(q));
    }

    [Fact]
    public void Merging_nothing_is_empty()
    {
        var merged = LatencySnapshot.Merge([]);
        Assert.Equal(0, merged.Count);
        Assert.Empty(merged.Indexes);
    }

    [Fact]
    public void Buckets_are_contiguous_and_ordered()
    {
        for (var i = 1; i < LatencyHistogram.BucketCount; i++)
        {
            Assert.True(LatencyHistogram.LowerBound(i) > LatencyHistogram.LowerBound(i - 1), $"bucket {i}");
            Assert.Equal(i, LatencyHistogram.IndexOf(LatencyHistogram.LowerBound(i)));
            Assert.Equal(i - 1, LatencyHistogram.IndexOf(LatencyHistogram.LowerBound(i) - 1));
        }
    }

    [Fact]
    public void Extreme_values_land_in_the_end_buckets()
    {
        Assert.Equal(0, LatencyHistogram.IndexOf(-5));
        Assert.Equal(LatencyHistogram.BucketCount - 1, LatencyHistogram.IndexOf(long.MaxValue));
        var h = new LatencyHistogram();
        h.Record(-10);
        h.Record(TimeSpan.FromMilliseconds(3));
        Assert.Equal(3000, h.MaxMicros);
        Assert.Equal(3000, h.SumMicros);
    }

    [Fact]
    public void Clear_resets_everything()
    {
        var h = Uniform(1, 100);
        h.Clear();
        Assert.Equal((0L, 0L, 0L), (h.Count, h.SumMicros, h.MaxMicros));
        Assert.Empty(h.Snapshot().Indexes);
    }
}
