using Keystone.Aggregation;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class WatermarkTrackerTests
{
    // Processing time is kept well apart from event time so that a mix-up of the two cannot pass.
    private static readonly DateTimeOffset Wall = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static WatermarkTracker Tracker() => new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30));

    private static DateTimeOffset WallAt(double seconds) => Wall.AddSeconds(seconds);

    [Fact]
    public void There_is_no_watermark_before_the_first_event()
    {
        var tracker = Tracker();
        Assert.Null(tracker.Current(Wall));
        Assert.Null(tracker.WatermarkOf(0));
        Assert.Null(tracker.MaxEventTimeOf(0));

        // An input that reports it is alive without events does not make one up.
        tracker.Touch(0, Wall);
        Assert.Null(tracker.Current(Wall));
    }

    [Fact]
    public void The_watermark_is_the_maximum_event_time_minus_the_bound_and_never_moves_back()
    {
        var tracker = Tracker();

        tracker.Observe(0, At("12:00:10"), Wall);
        Assert.Equal(At("12:00:05"), tracker.WatermarkOf(0));

        tracker.Observe(0, At("12:00:02"), WallAt(1));
        Assert.Equal(At("12:00:05"), tracker.WatermarkOf(0));
        Assert.Equal(At("12:00:10"), tracker.MaxEventTimeOf(0));

        tracker.Observe(0, At("12:00:20"), WallAt(2));
        tracker.Observe(0, At("12:00:19.999"), WallAt(3));
        Assert.Equal(At("12:00:15"), tracker.WatermarkOf(0));
        Assert.Equal(At("12:00:15"), tracker.Current(WallAt(3)));
    }

    [Fact]
    public void A_far_future_event_moves_the_watermark_no_further_than_its_arrival()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:10"), arrivedAt: At("12:00:11"), Wall);
        Assert.Equal(At("12:00:05"), tracker.WatermarkOf(0));

        // Stamped 50 minutes ahead by a wrong clock, it arrived at 12:00:12: it counts as 12:00:12, not 12:50.
        tracker.Observe(0, At("12:50:00"), arrivedAt: At("12:00:12"), WallAt(1));
        Assert.Equal(At("12:00:07"), tracker.WatermarkOf(0));
        Assert.Equal(At("12:00:12"), tracker.MaxEventTimeOf(0));

        // So the next on-time events of everyone else are not late, and time moves on with them as before.
        tracker.Observe(0, At("12:00:20"), arrivedAt: At("12:00:20.5"), WallAt(2));
        Assert.Equal(At("12:00:15"), tracker.WatermarkOf(0));
        Assert.Equal(At("12:00:15"), tracker.Current(WallAt(2)));

        // Event time that trails arrival (the normal case) is what moves the watermark.
        Assert.Equal(At("12:00:20"), WatermarkTracker.Progress(At("12:00:20"), At("12:00:21")));
        Assert.Equal(At("12:00:21"), WatermarkTracker.Progress(At("12:00:22"), At("12:00:21")));
    }

    [Fact]
    public void Several_inputs_take_the_minimum()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:30"), Wall);
        tracker.Observe(1, At("12:00:12"), Wall);
        tracker.Observe(2, At("12:01:00"), Wall);

        Assert.Equal(At("12:00:07"), tracker.Current(WallAt(1)));

        // The slowest input catching up releases the next slowest.
        tracker.Observe(1, At("12:02:00"), WallAt(2));
        Assert.Equal(At("12:00:25"), tracker.Current(WallAt(2)));
        Assert.Equal(new Dictionary<int, DateTimeOffset?> { [0] = At("12:00:30"), [1] = At("12:02:00"), [2] = At("12:01:00") }, tracker.Inputs);
    }

    [Fact]
    public void An_input_silent_for_the_idle_timeout_stops_holding_the_watermark_back()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:30"), Wall);
        tracker.Observe(1, At("12:00:12"), Wall);
        tracker.Observe(0, At("12:00:40"), WallAt(20));

        Assert.False(tracker.IsIdle(1, WallAt(29.999)));
        Assert.Equal(At("12:00:07"), tracker.Current(WallAt(29.999)));

        Assert.True(tracker.IsIdle(1, WallAt(30)));
        Assert.False(tracker.IsIdle(0, WallAt(30)));
        Assert.Equal(At("12:00:35"), tracker.Current(WallAt(30)));
    }

    [Fact]
    public void When_every_input_is_idle_the_highest_watermark_is_used()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:30"), Wall);
        tracker.Observe(1, At("12:00:12"), WallAt(10));

        Assert.Equal(At("12:00:07"), tracker.Current(WallAt(29)));
        // Input 0 idle, input 1 not yet: only input 1 counts.
        Assert.Equal(At("12:00:07"), tracker.Current(WallAt(30)));
        // Both idle.
        Assert.Equal(At("12:00:25"), tracker.Current(WallAt(40)));
    }

    [Fact]
    public void Touch_keeps_a_caught_up_input_active()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:30"), Wall);
        tracker.Observe(1, At("12:00:12"), Wall);
        tracker.Observe(0, At("12:00:40"), WallAt(25));
        tracker.Touch(1, WallAt(25));

        Assert.False(tracker.IsIdle(1, WallAt(54.999)));
        Assert.Equal(At("12:00:07"), tracker.Current(WallAt(54.999)));
        Assert.Equal(At("12:00:12"), tracker.MaxEventTimeOf(1));
    }

    [Fact]
    public void An_input_never_heard_from_is_idle_and_one_without_events_holds_nothing_back()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:00:30"), Wall);
        tracker.Touch(1, Wall);

        Assert.True(tracker.IsIdle(7, Wall));
        Assert.False(tracker.IsIdle(1, Wall));
        Assert.Equal(At("12:00:25"), tracker.Current(Wall));
    }

    [Fact]
    public void Restore_sets_an_input_as_checkpointed()
    {
        var tracker = Tracker();
        tracker.Observe(0, At("12:10"), Wall);
        tracker.Observe(1, At("12:10"), Wall);

        tracker.Restore(0, At("12:01"), Wall);
        Assert.Equal(At("12:00:55"), tracker.WatermarkOf(0));
        Assert.Equal(At("12:00:55"), tracker.Current(Wall));

        // Restored without an event time, the input no longer counts.
        tracker.Restore(0, null, Wall);
        Assert.Null(tracker.WatermarkOf(0));
        Assert.Equal(At("12:09:55"), tracker.Current(Wall));

        // Restored with an old activity time, it is idle at once.
        tracker.Restore(0, At("12:00"), Wall.AddMinutes(-1));
        Assert.True(tracker.IsIdle(0, Wall));
        Assert.Equal(At("12:09:55"), tracker.Current(Wall));
    }
}
