using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Pipeline;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

/// <summary>Event-time firing as the operator drives it: on-time firing, late firings, and the late side output.</summary>
public class WindowFiringTests
{
    /// <summary>
    /// One partition's operator with one user, reduced to the aggregation steps of ActivityOperatorGrain.Process and
    /// UserGrain.ApplyActivity: each event is classified with the watermark from before the delivery, too-late ones go
    /// to the side output, the rest are applied (re-emitting windows that had already fired), then the watermark
    /// advances and the windows it passed fire.
    /// </summary>
    private sealed class Operator(AggregationOptions options)
    {
        private readonly TumblingWindows _windows = options.Windows();
        private readonly ClockSkew _clockSkew = new(TimeSpan.FromMinutes(1));

        public UserActivityAggregator User { get; } = new(Playback.User, options, new UserActivityState());
        public DateTimeOffset? MaxEventTime { get; private set; }
        public DateTimeOffset? Watermark => MaxEventTime - options.OutOfOrderness;
        public List<KeystoneEvent> SideOutput { get; } = [];

        /// <summary>Events that arrive (are ingested) long after their time: no clock is ahead.</summary>
        public List<WindowResult> Deliver(params KeystoneEvent[] events) => DeliverAt(DateTimeOffset.MaxValue, events);

        public List<WindowResult> DeliverAt(DateTimeOffset arrivedAt, params KeystoneEvent[] events)
        {
            var watermark = Watermark;
            var late = new List<DateTimeOffset>();
            foreach (var original in events)
            {
                var e = _clockSkew.Correct(original, arrivedAt);
                var progress = WatermarkTracker.Progress(e.Timestamp, arrivedAt);
                if (MaxEventTime is not { } max || progress > max) MaxEventTime = progress;
                if (LatenessPolicy.Classify(_windows.Assign(e.Timestamp), watermark, options.AllowedLateness) == Lateness.TooLate)
                {
                    SideOutput.Add(e);
                    continue;
                }
                var wasFired = User.IsFired(e.Timestamp);
                if (User.Apply(e, Now, out _) && wasFired) late.Add(User.WindowStart(e.Timestamp));
            }
            var results = late.Distinct().Select(User.Reemit).ToList();
            if (Watermark is { } wm) results.AddRange(User.Fire(wm));
            return results;
        }
    }

    private static void AssertResult(WindowResult expected, WindowResult actual)
    {
        Assert.Equal((expected.UserId, expected.LateUpdate), (actual.UserId, actual.LateUpdate));
        AssertStats(expected.Stats, actual.Stats);
    }

    [Fact]
    public void A_window_fires_when_the_watermark_reaches_its_end_and_only_once()
    {
        var aggregator = new UserActivityAggregator(User, new AggregationOptions(), new UserActivityState());
        aggregator.Apply(Started(At("12:00:00")), Now, out _);
        aggregator.Apply(Paused(At("12:03:00"), 180_000), Now, out _);
        aggregator.Apply(Started(At("12:06:00"), video: "video-2", device: "phone-1"), Now, out _);

        Assert.Empty(aggregator.Fire(At("12:04:59.999")));

        var fired = Assert.Single(aggregator.Fire(At("12:05")));
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 1, 1, 0, 0, 0, 180_000, 1, [Tv], At("12:03"), true), false), fired);

        Assert.Empty(aggregator.Fire(At("12:05")));
        Assert.Empty(aggregator.Fire(At("12:09:59.999")));

        var next = Assert.Single(aggregator.Fire(At("12:10")));
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:05", "12:10"), 1, 0, 0, 0, 0, 0, 1, ["phone-1"], At("12:06"), true), false), next);
    }

    [Fact]
    public void One_watermark_fires_every_window_it_has_passed_in_order()
    {
        var aggregator = new UserActivityAggregator(User, new AggregationOptions(), new UserActivityState());
        aggregator.Apply(Started(At("12:11")), Now, out _);
        aggregator.Apply(Started(At("12:01"), video: "video-2"), Now, out _);
        aggregator.Apply(Started(At("12:06"), video: "video-3"), Now, out _);

        var fired = aggregator.Fire(At("12:10"));

        Assert.Equal([Window("12:00", "12:05"), Window("12:05", "12:10")], fired.Select(r => r.Stats.Window));
        Assert.Equal([1L, 1L], fired.Select(r => r.Stats.Plays));
        Assert.Equal(At("12:15"), aggregator.NextWindowEnd);
    }

    [Fact]
    public void Out_of_order_events_do_not_move_the_watermark_back_and_count_in_their_window()
    {
        var op = new Operator(new AggregationOptions { OutOfOrderness = TimeSpan.FromSeconds(5) });

        Assert.Empty(op.Deliver(Started(At("12:04:50"))));
        Assert.Equal(At("12:04:45"), op.Watermark);

        Assert.Empty(op.Deliver(Started(At("12:05:03"), video: "video-2", device: "phone-1")));
        Assert.Equal(At("12:04:58"), op.Watermark);

        // Older than the maximum but not late: the watermark stays, the pause lands in [12:00, 12:05).
        Assert.Empty(op.Deliver(Paused(At("12:04:58"), 8_000)));
        Assert.Equal(At("12:04:58"), op.Watermark);

        var fired = Assert.Single(op.Deliver(Paused(At("12:05:05"), 2_000, video: "video-2", device: "phone-1")));
        Assert.Equal(At("12:05"), op.Watermark);
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 1, 1, 0, 0, 0, 8_000, 1, [Tv], At("12:04:58"), true), false), fired);
        Assert.Empty(op.SideOutput);
    }

    [Fact]
    public void An_event_stamped_far_ahead_of_its_arrival_counts_in_the_window_it_arrived_in_and_makes_nothing_late()
    {
        var op = new Operator(new AggregationOptions { OutOfOrderness = TimeSpan.FromSeconds(5) });
        op.DeliverAt(At("12:02:01"), Started(At("12:02")));

        // A clock 50 minutes fast. Within the tolerance (1 min) an event keeps its own time; beyond it, its arrival.
        op.DeliverAt(At("12:02:10"), Paused(At("12:52:10"), 10_000));
        Assert.Equal(At("12:02:05"), op.Watermark);

        // Everyone else's on-time events after it: none is late, and the watermark keeps following them.
        op.DeliverAt(At("12:03:00.5"), Resumed(At("12:03"), 10_000), Stopped(At("12:03:20"), 30_000));
        Assert.Equal(At("12:02:55.5"), op.Watermark);
        var fired = Assert.Single(op.DeliverAt(At("12:05:06"), Started(At("12:05:05.5"), video: "video-2", device: "phone-1")));

        Assert.Empty(op.SideOutput);
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 1, 1, 1, 0, 1, 30_000, 1, [Tv], At("12:03:20"), true), false), fired);
        Assert.Equal([Window("12:00", "12:05"), Window("12:05", "12:10")], op.User.View(null, null).Windows.Select(w => w.Window));
    }

    [Fact]
    public void A_late_event_within_the_allowed_lateness_re_emits_the_updated_window()
    {
        var op = new Operator(new AggregationOptions { AllowedLateness = TimeSpan.FromMinutes(2) });
        Assert.Empty(op.Deliver(Started(At("12:01"))));

        var onTime = Assert.Single(op.Deliver(Started(At("12:05:10"), video: "video-2", device: "phone-1")));
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 1, 0, 0, 0, 0, 0, 1, [Tv], At("12:01"), true), false), onTime);

        // Watermark 12:05:05: the window has fired, and 12:07 is when it is given up.
        Assert.Equal(Lateness.LateWithinLateness, LatenessPolicy.Classify(Window("12:00", "12:05"), op.Watermark, TimeSpan.FromMinutes(2)));
        var late = Assert.Single(op.Deliver(Started(At("12:04"), video: "video-3", device: "tablet-1")));
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 2, 0, 0, 0, 0, 0, 2, [Tv, "tablet-1"], At("12:04"), true), true), late);

        // Two late events for the window in one delivery: one re-emission with both.
        var again = Assert.Single(op.Deliver(Paused(At("12:04:30"), 30_000, video: "video-3", device: "tablet-1"), Resumed(At("12:04:40"), 30_000, video: "video-3", device: "tablet-1")));
        AssertResult(new WindowResult(User, new UserWindowStats(Window("12:00", "12:05"), 2, 1, 1, 0, 0, 30_000, 2, [Tv, "tablet-1"], At("12:04:40"), true), true), again);
        Assert.Empty(op.SideOutput);
    }

    [Fact]
    public void An_event_later_than_the_allowed_lateness_goes_to_the_side_output_and_changes_nothing()
    {
        var op = new Operator(new AggregationOptions { AllowedLateness = TimeSpan.FromMinutes(2), HistoryWindows = 1 });
        op.Deliver(Started(At("12:01")));
        op.Deliver(Started(At("12:05:10"), video: "video-2", device: "phone-1"));

        // Watermark 12:06:59.999, a millisecond short of end + lateness: still a late update.
        op.Deliver(Started(At("12:07:04.999"), video: "video-2", device: "phone-1"));
        var update = Assert.Single(op.Deliver(Started(At("12:04"), video: "video-3", device: "tablet-1")));
        Assert.True(update.LateUpdate);
        Assert.Equal(2, update.Stats.Plays);

        // Watermark 12:07: the window is given up (and, beyond the history of one, forgotten).
        Assert.Empty(op.Deliver(Started(At("12:07:05"), video: "video-2", device: "phone-1")));
        Assert.Equal(Lateness.TooLate, LatenessPolicy.Classify(Window("12:00", "12:05"), op.Watermark, TimeSpan.FromMinutes(2)));
        var tooLate = Started(At("12:04:30"), video: "video-4", device: "tablet-1");

        Assert.Empty(op.Deliver(tooLate));

        Assert.Equal([tooLate], op.SideOutput);
        Assert.Equal([Window("12:05", "12:10")], op.User.View(null, null).Windows.Select(w => w.Window));
        Assert.Equal(new UserTotals(5, 5, 0, 0, 0, 0, 0, 1), op.User.View(null, null).Totals);
        Assert.False(op.User.IsFired(At("12:04:30")));
    }
}
