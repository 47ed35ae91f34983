namespace Keystone.UnitTests.Metrics;

public class RecentLatencyTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 5, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_slow_start_leaves_the_recent_percentiles_after_two_windows()
    {
        var recent = new RecentLatency(TimeSpan.FromSeconds(30));
        recent.Advance(Start);
        for (var i = 0; i < 100; i++) recent.Record(400_000);

        recent.Advance(Start.AddSeconds(31));
        for (var i = 0; i < 100; i++) recent.Record(3_000);
        // The window before is still part of the last minute.
        Assert.Equal(200, recent.Snapshot(Start.AddSeconds(45)).Count);
        Assert.InRange(recent.Snapshot(Start.AddSeconds(45)).Percentile(0.99), 380, 420);

        // Two windows on, only the fast deliveries are left.
        var later = recent.Snapshot(Start.AddSeconds(61));
        Assert.Equal(100, later.Count);
        Assert.InRange(later.Percentile(0.99), 2.9, 3.2);
    }

    [Fact]
    public void Silence_longer_than_a_window_empties_it_and_a_clock_going_back_changes_nothing()
    {
        var recent = new RecentLatency(TimeSpan.FromSeconds(30));
        recent.Advance(Start);
        recent.Record(5_000, 10);
        recent.Advance(Start.AddSeconds(-40));
        recent.Record(6_000, 10);
        Assert.Equal(20, recent.Snapshot(Start.AddSeconds(1)).Count);
        Assert.Equal(0, recent.Snapshot(Start.AddMinutes(5)).Count);
        Assert.Equal(0, recent.Snapshot(Start.AddMinutes(5)).Percentile(0.99));
    }

    [Fact]
    public void A_window_must_be_positive() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecentLatency(TimeSpan.Zero));
}
