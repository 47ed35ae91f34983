using Keystone.Ads;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ads;

public class RecentTimesTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;

    private static DateTimeOffset At(int seconds) => T0.AddSeconds(seconds);

    [Fact]
    public void Instants_keep_the_order_they_were_added_in_across_the_inline_and_array_forms()
    {
        var times = new RecentTimes();
        Assert.Null(times.Last);
        foreach (var s in new[] { 5, 1, 9, 3, 7, 2 })
        {
            times.Add(At(s));
            Assert.Equal(At(s), times.Last);
        }

        Assert.Equal([At(5), At(1), At(9), At(3), At(7), At(2)], times);
        Assert.Equal(6, times.Count);
        Assert.Equal(At(9), times[2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => times[6]);
    }

    [Fact]
    public void Removing_the_old_instants_keeps_the_rest_in_order_and_goes_back_inline()
    {
        var times = new RecentTimes { At(5), At(1), At(9), At(3), At(7) };

        times.RemoveAtOrBefore(At(3));
        Assert.Equal([At(5), At(9), At(7)], times);

        times.RemoveAtOrBefore(At(7));
        Assert.Equal([At(9)], times);

        // Back in the value itself: adding two more goes inline and then to a new array, in order.
        times.Add(At(11));
        times.Add(At(10));
        Assert.Equal([At(9), At(11), At(10)], times);

        times.RemoveAtOrBefore(At(20));
        Assert.Empty(times);
        Assert.Null(times.Last);
        times.Add(At(30));
        Assert.Equal([At(30)], times);
    }

    [Fact]
    public void Inline_removal_forgets_the_first_and_keeps_the_second()
    {
        var times = new RecentTimes { At(1), At(4) };
        times.RemoveAtOrBefore(At(1));
        Assert.Equal([At(4)], times);
        times.Add(At(6));
        Assert.Equal([At(4), At(6)], times);
    }

    [Fact]
    public void Counting_within_a_window_excludes_its_start_and_includes_its_end()
    {
        var times = new RecentTimes { At(0), At(10), At(20), At(30) };
        Assert.Equal(2, times.CountWithin(At(0), At(20)));
        Assert.Equal(3, times.CountWithin(At(5), DateTimeOffset.MaxValue));
        Assert.Equal(0, times.CountWithin(At(30), At(40)));
        Assert.Equal(0, new RecentTimes().CountWithin(DateTimeOffset.MinValue, DateTimeOffset.MaxValue));
    }

    [Fact]
    public void Instants_are_kept_as_utc_and_compare_as_the_same_moment()
    {
        var local = new DateTimeOffset(2026, 12, 3, 23, 15, 0, TimeSpan.FromHours(1));
        var times = new RecentTimes { local };
        Assert.Equal(local, times[0]);
        Assert.Equal(TimeSpan.Zero, times[0].Offset);
    }
}
