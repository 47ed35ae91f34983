using Keystone.Aggregation;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class TumblingWindowsTests
{
    private static readonly TumblingWindows FiveMinutes = new(TimeSpan.FromMinutes(5));

    private static DateTimeOffset Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0, int ms = 0) =>
        new(year, month, day, hour, minute, second, ms, TimeSpan.Zero);

    [Fact]
    public void The_last_millisecond_belongs_to_the_window_and_its_end_to_the_next()
    {
        Assert.Equal(Window("12:00", "12:05"), FiveMinutes.Assign(At("12:00")));
        Assert.Equal(Window("12:00", "12:05"), FiveMinutes.Assign(At("12:04:59.999")));
        Assert.Equal(Window("12:05", "12:10"), FiveMinutes.Assign(At("12:05")));
        Assert.Equal(Window("11:55", "12:00"), FiveMinutes.Assign(At("11:59:59.999")));
    }

    [Fact]
    public void A_window_contains_its_start_and_not_its_end()
    {
        var window = FiveMinutes.Assign(At("12:02"));

        Assert.True(window.Contains(At("12:00")));
        Assert.True(window.Contains(At("12:04:59.999")));
        Assert.False(window.Contains(At("12:05")));
        Assert.False(window.Contains(At("11:59:59.999")));
    }

    [Fact]
    public void An_offset_shifts_every_boundary()
    {
        // Flink's of(5 min, 1 min): windows start at :01, :06, :11, ...
        var windows = new TumblingWindows(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1));

        Assert.Equal(Window("11:56", "12:01"), windows.Assign(At("12:00:30")));
        Assert.Equal(Window("11:56", "12:01"), windows.Assign(At("12:00:59.999")));
        Assert.Equal(Window("12:01", "12:06"), windows.Assign(At("12:01")));
        Assert.Equal(Window("12:01", "12:06"), windows.Assign(At("12:05:59.999")));
        Assert.Equal(Window("12:06", "12:11"), windows.Assign(At("12:06")));
    }

    [Fact]
    public void Times_before_the_unix_epoch_are_assigned_like_later_ones()
    {
        var minute = new TumblingWindows(TimeSpan.FromMinutes(1));
        Assert.Equal(new TimeWindow(Utc(1969, 12, 31, 23, 59), Utc(1970, 1, 1)), minute.Assign(Utc(1969, 12, 31, 23, 59, 59, 999)));
        Assert.Equal(new TimeWindow(Utc(1970, 1, 1), Utc(1970, 1, 1, 0, 1)), minute.Assign(Utc(1970, 1, 1)));

        var shifted = new TumblingWindows(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1));
        Assert.Equal(new TimeWindow(Utc(1969, 12, 31, 23, 56), Utc(1970, 1, 1, 0, 1)), shifted.Assign(Utc(1969, 12, 31, 23, 58)));
        Assert.Equal(new TimeWindow(Utc(1969, 12, 31, 23, 51), Utc(1969, 12, 31, 23, 56)), shifted.Assign(Utc(1969, 12, 31, 23, 55, 59, 999)));
        Assert.Equal(new TimeWindow(Utc(1899, 12, 31, 23, 55), Utc(1900, 1, 1)), FiveMinutes.Assign(Utc(1899, 12, 31, 23, 59, 59)));
    }

    [Fact]
    public void Week_windows_are_aligned_to_the_unix_epoch_as_in_Flink()
    {
        // 1970-01-01 was a Thursday, so Flink's 7-day windows run Thursday to Thursday; 2024-12-26 is a Thursday.
        // (Ticks since 0001-01-01, a Monday, would give Monday-aligned weeks instead.)
        var week = new TumblingWindows(TimeSpan.FromDays(7));

        Assert.Equal(new TimeWindow(Utc(1970, 1, 1), Utc(1970, 1, 8)), week.Assign(Utc(1970, 1, 1)));
        Assert.Equal(new TimeWindow(Utc(1969, 12, 25), Utc(1970, 1, 1)), week.Assign(Utc(1969, 12, 31, 23, 59, 59, 999)));
        Assert.Equal(new TimeWindow(Utc(2024, 12, 26), Utc(2025, 1, 2)), week.Assign(Utc(2024, 12, 28, 10)));
        Assert.Equal(new TimeWindow(Utc(2024, 12, 19), Utc(2024, 12, 26)), week.Assign(Utc(2024, 12, 25, 23, 59, 59, 999)));
    }

    [Fact]
    public void Sizes_that_do_not_divide_a_day_are_aligned_to_the_unix_epoch()
    {
        // 7 minutes: the epoch itself is a boundary, and so is every multiple of 7 minutes after it.
        var windows = new TumblingWindows(TimeSpan.FromMinutes(7));
        var start = DateTimeOffset.UnixEpoch.AddMinutes(7 * 1_000);

        Assert.Equal(new TimeWindow(DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddMinutes(7)), windows.Assign(DateTimeOffset.UnixEpoch.AddMinutes(3)));
        Assert.Equal(new TimeWindow(start, start.AddMinutes(7)), windows.Assign(start.AddMinutes(6).AddMilliseconds(59_999)));
        Assert.Equal(new TimeWindow(start.AddMinutes(-7), start), windows.Assign(start.AddMilliseconds(-1)));
    }

    [Fact]
    public void The_window_depends_on_the_instant_not_on_the_clock_offset()
    {
        // 17:34 in India (UTC+05:30) is 12:04 UTC; a half-hour zone would shift a window computed on local time.
        var india = new DateTimeOffset(2024, 12, 26, 17, 34, 0, TimeSpan.FromMinutes(330));

        var window = FiveMinutes.Assign(india);

        Assert.Equal(Window("12:00", "12:05"), window);
        Assert.Equal(TimeSpan.Zero, window.Start.Offset);
    }

    [Theory]
    [InlineData(0, 0, "size")]
    [InlineData(-60, 0, "size")]
    [InlineData(300, 300, "offset")]
    [InlineData(300, 301, "offset")]
    [InlineData(300, -1, "offset")]
    public void Invalid_sizes_and_offsets_are_refused(int sizeSeconds, int offsetSeconds, string parameter)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TumblingWindows(TimeSpan.FromSeconds(sizeSeconds), TimeSpan.FromSeconds(offsetSeconds)));
        Assert.Equal(parameter, e.ParamName);
    }
}
