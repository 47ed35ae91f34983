using Keystone.Aggregation;
using Keystone.Events;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class UserActivityAggregatorTests
{
    private static UserActivityAggregator Aggregator(AggregationOptions? options = null, UserActivityState? state = null) =>
        new(User, options ?? new AggregationOptions(), state ?? new UserActivityState());

    private static PlayContribution? Apply(UserActivityAggregator aggregator, KeystoneEvent e)
    {
        Assert.True(aggregator.Apply(e, Now, out var contribution));
        return contribution;
    }

    private static long[] WatchOf(UserActivityAggregator aggregator, params KeystoneEvent[] events) =>
        [.. events.Select(e => Apply(aggregator, e)!.WatchMs)];

    private static UserWindowStats Only(UserActivityAggregator aggregator) => Assert.Single(aggregator.View(null, null).Windows);

    [Fact]
    public void Each_event_type_is_counted_in_its_window_and_the_totals()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00")),
            Paused(At("12:00:30"), 30_000),
            Resumed(At("12:01:00"), 30_000),
            Seeked(At("12:01:10"), from: 40_000, to: 100_000),
            Stopped(At("12:01:20"), 110_000));

        // Play 0 → pause 30 s; paused until the resume; resume 30 s → seek started at 40 s; landed at 100 s → stop 110 s.
        Assert.Equal([0, 30_000, 0, 10_000, 10_000], watch);
        AssertStats(new UserWindowStats(Window("12:00", "12:05"), 1, 1, 1, 1, 1, 50_000, 1, [Tv], At("12:01:20"), false), Only(aggregator));
        Assert.Equal(new UserTotals(5, 1, 1, 1, 1, 1, 50_000, 1), aggregator.View(null, null).Totals);
    }

    [Fact]
    public void Watch_time_is_capped_by_the_elapsed_event_time_plus_a_second()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00")),
            // 10 minutes of playhead in 10 seconds: only 10 s + 1 s count.
            Paused(At("12:00:10"), 600_000),
            Resumed(At("12:00:20"), 600_000),
            // 10.8 s of playhead in 10 s is within the second of slack.
            Paused(At("12:00:30"), 610_800));

        Assert.Equal([0, 11_000, 0, 10_800], watch);
        Assert.Equal(21_800, Only(aggregator).WatchMs);
    }

    [Fact]
    public void Time_paused_between_intervals_is_not_watched()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00")),
            Paused(At("12:00:20"), 20_000),
            Resumed(At("12:02:00"), 20_000),
            Paused(At("12:02:30"), 50_000));

        Assert.Equal([0, 20_000, 0, 30_000], watch);
        Assert.Equal(50_000, aggregator.View(null, null).Totals.WatchMs);
    }

    [Fact]
    public void A_seek_ends_watching_where_it_started_and_playing_continues_where_it_landed()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00")),
            Seeked(At("12:00:30"), from: 30_000, to: 300_000),
            Stopped(At("12:01:00"), 330_000));

        // Without the seek the stop would claim min(330 s, 60 s + 1 s) = 61 s.
        Assert.Equal([0, 30_000, 30_000], watch);
        Assert.Equal(60_000, Only(aggregator).WatchMs);
    }

    [Fact]
    public void A_seek_while_paused_stays_paused()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00")),
            Paused(At("12:00:10"), 10_000),
            Seeked(At("12:00:20"), from: 10_000, to: 50_000),
            Stopped(At("12:00:40"), 70_000));

        Assert.Equal([0, 10_000, 0, 0], watch);
    }

    [Fact]
    public void Devices_play_independently()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00"), device: Tv),
            Started(At("12:00:05"), video: "video-2", device: "phone-1"),
            Paused(At("12:00:20"), 20_000, device: Tv),
            Stopped(At("12:00:35"), 30_000, video: "video-2", device: "phone-1"));

        Assert.Equal([0, 0, 20_000, 30_000], watch);
        AssertStats(new UserWindowStats(Window("12:00", "12:05"), 2, 1, 0, 0, 1, 50_000, 2, [Tv, "phone-1"], At("12:00:35"), false), Only(aggregator));
    }

    [Fact]
    public void Positions_of_another_title_on_the_same_device_are_not_watch_time()
    {
        var aggregator = Aggregator();

        var watch = WatchOf(aggregator,
            Started(At("12:00:00"), video: "video-1"),
            Paused(At("12:00:30"), 30_000, video: "video-2"),
            // The device's player now holds video-2, paused: video-1's positions mean nothing either.
            Paused(At("12:00:40"), 40_000, video: "video-1"));

        Assert.Equal([0, 0, 0], watch);
    }

    [Fact]
    public void Watch_time_goes_to_the_window_of_the_event_that_ends_the_interval()
    {
        var aggregator = Aggregator();

        WatchOf(aggregator, Started(At("12:04:00")), Paused(At("12:06:00"), 120_000));

        var windows = aggregator.View(null, null).Windows;
        Assert.Equal(2, windows.Count);
        AssertStats(new UserWindowStats(Window("12:00", "12:05"), 1, 0, 0, 0, 0, 0, 1, [Tv], At("12:04:00"), false), windows[0]);
        AssertStats(new UserWindowStats(Window("12:05", "12:10"), 0, 1, 0, 0, 0, 120_000, 1, [Tv], At("12:06:00"), false), windows[1]);
    }

    [Fact]
    public void An_out_of_order_end_trusts_the_playhead()
    {
        var aggregator = Aggregator();

        // The pause's event time is before the play's: no elapsed time to cap by.
        var watch = WatchOf(aggregator, Started(At("12:00:30")), Paused(At("12:00:20"), 15_000));

        Assert.Equal([0, 15_000], watch);
    }

    [Fact]
    public void A_stop_at_95_percent_or_marked_completed_is_a_completion()
    {
        var aggregator = Aggregator();
        WatchOf(aggregator,
            Started(At("12:00:00"), video: "a", device: "d1", position: 90_000),
            Started(At("12:00:00"), video: "b", device: "d2", position: 90_000),
            Started(At("12:00:00"), video: "c", device: "d3"));

        var at95 = Apply(aggregator, Stopped(At("12:00:05"), 95_000, video: "a", device: "d1", duration: 100_000))!;
        var below = Apply(aggregator, Stopped(At("12:00:05"), 94_999, video: "b", device: "d2", duration: 100_000))!;
        var marked = Apply(aggregator, Stopped(At("12:00:05"), 1_000, video: "c", device: "d3", completed: true))!;

        Assert.True(at95.Completed);
        Assert.False(below.Completed);
        Assert.True(marked.Completed);
        Assert.Equal([5_000, 4_999, 1_000], new[] { at95.WatchMs, below.WatchMs, marked.WatchMs });
    }

    [Fact]
    public void Contributions_carry_what_videos_and_profiles_need()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"), quality: "4K", genre: "drama");
        var pause = Paused(At("12:00:30"), 30_000);

        Assert.Equal(new PlayContribution(start.EventId, "video.play.started", At("12:00:00"), User, Video, Profile, 0, true, false, "4K", "drama"), Apply(aggregator, start));
        Assert.Equal(new PlayContribution(pause.EventId, "video.play.paused", At("12:00:30"), User, Video, Profile, 30_000, false, false, null, null), Apply(aggregator, pause));
    }

    [Fact]
    public void Other_events_count_but_contribute_nothing()
    {
        var aggregator = Aggregator();
        var login = new KeystoneEvent(Guid.NewGuid(), "user.login", At("12:01"), "1.0", new EventSource("auth-service"), Payload.Create(("user_id", User)), EventMetadata.Empty);

        Assert.Null(Apply(aggregator, login));

        // Without a device id or a device type the device is "unknown".
        AssertStats(new UserWindowStats(Window("12:00", "12:05"), 0, 0, 0, 0, 0, 0, 0, ["unknown"], At("12:01"), false), Only(aggregator));
        Assert.Equal(new UserTotals(1, 0, 0, 0, 0, 0, 0, 1), aggregator.View(null, null).Totals);
    }

    [Fact]
    public void Distinct_videos_and_devices_are_per_window()
    {
        var aggregator = Aggregator();

        WatchOf(aggregator,
            Started(At("12:00:00"), video: "video-1", device: Tv),
            Started(At("12:01:00"), video: "video-2", device: Tv),
            Started(At("12:02:00"), video: "video-1", device: "phone-1"),
            Paused(At("12:03:00"), 60_000, video: "video-2", device: Tv),
            Started(At("12:06:00"), video: "video-3", device: "tablet-1"));

        var windows = aggregator.View(null, null).Windows;
        Assert.Equal(2, windows.Count);
        Assert.Equal(2, windows[0].DistinctVideos);
        Assert.Equal([Tv, "phone-1"], windows[0].Devices);
        Assert.Equal(1, windows[1].DistinctVideos);
        Assert.Equal(["tablet-1"], windows[1].Devices);
    }

    [Fact]
    public void A_gap_longer_than_the_session_gap_starts_a_new_session()
    {
        var aggregator = Aggregator();

        WatchOf(aggregator, Started(At("12:00:00")), Paused(At("12:30:00"), 1_800_000));

        // 12:30 is exactly the 30-minute gap after 12:00: still the same session.
        var first = aggregator.View(null, null).CurrentSession!;
        Assert.Equal((At("12:00"), At("12:30"), 2L, 1L, 1_800_000L), (first.Start, first.LastActivity, first.Events, first.Plays, first.WatchMs));
        Assert.Equal([Tv], first.Devices);
        Assert.Equal(1, aggregator.View(null, null).Totals.Sessions);

        Apply(aggregator, Started(At("13:00:00.001"), video: "video-2", device: "phone-1"));

        var second = aggregator.View(null, null).CurrentSession!;
        Assert.Equal((At("13:00:00.001"), At("13:00:00.001"), 1L, 1L, 0L), (second.Start, second.LastActivity, second.Events, second.Plays, second.WatchMs));
        Assert.Equal(["phone-1"], second.Devices);
        Assert.Equal(2, aggregator.View(null, null).Totals.Sessions);
    }

    [Fact]
    public void An_out_of_order_event_joins_the_current_session()
    {
        var aggregator = Aggregator();
        Apply(aggregator, Started(At("13:00")));

        Apply(aggregator, Started(At("12:59"), video: "video-2"));

        var session = aggregator.View(null, null).CurrentSession!;
        Assert.Equal((At("13:00"), At("13:00"), 2L, 2L), (session.Start, session.LastActivity, session.Events, session.Plays));
        Assert.Equal(1, aggregator.View(null, null).Totals.Sessions);
    }

    [Fact]
    public void A_repeated_event_changes_nothing_and_gives_the_first_contribution()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"));
        var pause = Paused(At("12:00:30"), 30_000);
        var resume = Resumed(At("12:01:00"), 30_000);
        Apply(aggregator, start);
        var first = Apply(aggregator, pause);
        Apply(aggregator, resume);
        var before = Json(aggregator.View(null, null));

        // The player has moved on since: recomputing the pause now would give other watch time.
        Assert.False(aggregator.Apply(pause, Now.AddSeconds(5), out var again));
        Assert.False(aggregator.Apply(start, Now.AddSeconds(5), out var startAgain));

        Assert.Equal(first, again);
        Assert.Equal(new PlayContribution(pause.EventId, "video.play.paused", At("12:00:30"), User, Video, Profile, 30_000, false, false, null, null), again);
        Assert.Equal(start.EventId, startAgain!.EventId);
        Assert.True(startAgain.Started);
        Assert.Equal(before, Json(aggregator.View(null, null)));
        Assert.Equal(new UserTotals(3, 1, 1, 1, 0, 0, 30_000, 1), aggregator.View(null, null).Totals);
        Assert.Equal(3, aggregator.RememberedIds);
    }

    [Fact]
    public void Fired_windows_beyond_the_history_are_forgotten_oldest_first()
    {
        var aggregator = Aggregator(new AggregationOptions { HistoryWindows = 2 });
        WatchOf(aggregator, Started(At("12:00")), Started(At("12:05")), Started(At("12:10")), Started(At("12:15")));

        var fired = aggregator.Fire(At("12:20"));

        Assert.Equal([At("12:00"), At("12:05"), At("12:10"), At("12:15")], fired.Select(r => r.Stats.Window.Start));
        Assert.Equal([At("12:10"), At("12:15")], aggregator.State.Windows.Select(w => w.Start));
    }

    [Fact]
    public void Windows_that_have_not_fired_are_kept_whatever_the_history()
    {
        var aggregator = Aggregator(new AggregationOptions { HistoryWindows = 1 });
        WatchOf(aggregator, Started(At("12:00")), Started(At("12:05")), Started(At("12:10")));

        Assert.Empty(aggregator.Fire(At("12:04:59.999")));
        Assert.Equal(3, aggregator.State.Windows.Count);

        Assert.Single(aggregator.Fire(At("12:05")));
        Assert.Equal([At("12:05"), At("12:10")], aggregator.State.Windows.Select(w => w.Start));
        Assert.Equal([false, false], aggregator.State.Windows.Select(w => w.Fired));
    }

    [Fact]
    public void Fired_windows_are_kept_until_the_allowed_lateness_has_passed()
    {
        var aggregator = Aggregator(new AggregationOptions { HistoryWindows = 1, AllowedLateness = TimeSpan.FromMinutes(2) });
        WatchOf(aggregator, Started(At("12:00")), Started(At("12:05")));

        aggregator.Fire(At("12:06"));
        // Beyond the history, but late events may still update it until 12:07.
        Assert.Equal([At("12:00"), At("12:05")], aggregator.State.Windows.Select(w => w.Start));

        Assert.Empty(aggregator.Fire(At("12:06:59.999")));
        Assert.Equal(2, aggregator.State.Windows.Count);

        Assert.Empty(aggregator.Fire(At("12:07")));
        Assert.Equal([At("12:05")], aggregator.State.Windows.Select(w => w.Start));
    }

    [Fact]
    public void NextWindowEnd_is_the_earliest_end_not_yet_fired()
    {
        var aggregator = Aggregator();
        Assert.Null(aggregator.NextWindowEnd);

        WatchOf(aggregator, Started(At("12:07")), Started(At("12:02"), video: "video-2", device: "phone-1"));
        Assert.Equal(At("12:05"), aggregator.NextWindowEnd);

        aggregator.Fire(At("12:05"));
        Assert.Equal(At("12:10"), aggregator.NextWindowEnd);

        aggregator.Fire(At("12:10"));
        Assert.Null(aggregator.NextWindowEnd);
    }

    [Fact]
    public void A_restored_aggregator_remembers_ids_contributions_and_play_state()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"));
        var pause = Paused(At("12:00:30"), 30_000);
        var resume = Resumed(At("12:01:00"), 30_000);
        Apply(aggregator, start);
        var paused = Apply(aggregator, pause);
        var resumed = Apply(aggregator, resume);
        aggregator.PrepareCheckpoint();

        var restored = Aggregator(state: RoundTrip(aggregator.State));

        Assert.Equal(3, restored.RememberedIds);
        Assert.Equal(Json(aggregator.View(null, null)), Json(restored.View(null, null)));
        Assert.False(restored.Apply(pause, Now, out var pausedAgain));
        Assert.False(restored.Apply(resume, Now, out var resumedAgain));
        Assert.Equal(paused, pausedAgain);
        Assert.Equal(resumed, resumedAgain);

        // The cursor survived too: the player was playing from 30 s at 12:01.
        Assert.Equal(30_000, Apply(restored, Stopped(At("12:01:30"), 60_000))!.WatchMs);
        Assert.Equal(new UserTotals(4, 1, 1, 1, 0, 1, 60_000, 1), restored.View(null, null).Totals);
    }

    [Fact]
    public void A_state_written_with_whole_contributions_still_answers_repeats_and_keeps_only_their_watch_time()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"));
        var pause = Paused(At("12:00:30"), 30_000);
        Apply(aggregator, start);
        var paused = Apply(aggregator, pause)!;
        aggregator.PrepareCheckpoint();
        // The shape before compact contributions: every contribution whole, none in Watches.
        var old = RoundTrip(aggregator.State);
        old.RecentContributions = [Apply(Aggregator(), start)!, paused];
        old.Watches = [];

        var restored = Aggregator(state: RoundTrip(old));

        Assert.False(restored.Apply(pause, Now, out var again));
        Assert.Equal(paused, again);
        Assert.Null(restored.State.RecentContributions);
        Assert.Equal([new ContributedWatch(EventIdHorizon.Hash(pause.EventId), 30_000)], restored.State.Watches);
    }

    [Fact]
    public void A_state_written_with_whole_event_ids_still_answers_repeats_and_keeps_them_hashed()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"));
        var pause = Paused(At("12:00:30"), 30_000);
        var started = Apply(aggregator, start)!;
        var paused = Apply(aggregator, pause)!;
        aggregator.PrepareCheckpoint();
        // The shape before hashed contributions: 16-byte ids, zero watch times too.
        var old = RoundTrip(aggregator.State);
        old.Contributed = [new WholeIdWatch(start.EventId, 0), new WholeIdWatch(pause.EventId, 30_000)];
        old.Watches = [];

        var restored = Aggregator(state: RoundTrip(old));

        Assert.Null(restored.State.Contributed);
        Assert.Equal([new ContributedWatch(EventIdHorizon.Hash(pause.EventId), 30_000)], restored.State.Watches);
        Assert.False(restored.Apply(start, Now, out var startAgain));
        Assert.Equal(started, startAgain);
        Assert.False(restored.Apply(pause, Now, out var pauseAgain));
        Assert.Equal(paused, pauseAgain);
    }

    [Fact]
    public void Only_watch_times_that_are_not_zero_are_kept_and_a_repeat_of_one_that_was_zero_contributes_zero_again()
    {
        var aggregator = Aggregator();
        var start = Started(At("12:00:00"));
        var started = Apply(aggregator, start)!;
        Assert.Equal(0, started.WatchMs);
        Assert.Empty(aggregator.State.Watches);

        aggregator.PrepareCheckpoint();
        var restored = Aggregator(state: RoundTrip(aggregator.State));
        Assert.False(restored.Apply(start, Now, out var again));
        Assert.Equal(started, again);
    }

    [Fact]
    public void Contributions_are_forgotten_with_their_event_ids()
    {
        var aggregator = Aggregator();
        var later = Now + new AggregationOptions().DedupeHorizon + TimeSpan.FromMinutes(1);
        Assert.True(aggregator.Apply(Started(At("12:00:00")), Now, out _));
        Assert.True(aggregator.Apply(Paused(At("12:00:30"), 30_000), Now, out _));
        Assert.True(aggregator.Apply(Resumed(At("12:01:00"), 30_000), Now, out _));
        Assert.True(aggregator.Apply(Stopped(At("12:01:20"), 50_000), Now, out _));
        Assert.Equal(2, aggregator.State.Watches.Count);

        // Past the horizon the old ids go, and their contributions with them; the new one stays.
        var stop = Stopped(At("12:20:00"), 60_000);
        Assert.True(aggregator.Apply(Started(At("12:19:00")), later, out _));
        Assert.True(aggregator.Apply(stop, later, out _));
        Assert.Equal(2, aggregator.RememberedIds);
        Assert.Equal([EventIdHorizon.Hash(stop.EventId)], aggregator.State.Watches.Select(w => w.EventHash));
    }

    [Fact]
    public void A_busy_user_finds_the_contribution_of_any_remembered_event()
    {
        var aggregator = Aggregator();
        // Past the point where repeats are looked up through an index rather than by scanning.
        var events = Enumerable.Range(0, 150).SelectMany(i => new[] { Started(At("12:00:00").AddSeconds(i * 2)), Stopped(At("12:00:01").AddSeconds(i * 2), 1_000) }).ToList();
        var first = events.Select(e => Apply(aggregator, e)).ToList();

        foreach (var i in new[] { 0, 1, 97, 150, 299 })
        {
            Assert.False(aggregator.Apply(events[i], Now, out var again));
            Assert.Equal(first[i], again);
        }
        // And after more events, which the index must know too.
        var late = Started(At("12:20:00"));
        var lateFirst = Apply(aggregator, late);
        Assert.False(aggregator.Apply(late, Now, out var lateAgain));
        Assert.Equal(lateFirst, lateAgain);
    }

    [Fact]
    public void Once_written_the_state_drops_its_copy_of_the_ids_and_the_next_checkpoint_makes_it_again()
    {
        var aggregator = Aggregator();
        Apply(aggregator, Started(At("12:00:00")));
        aggregator.PrepareCheckpoint();
        Assert.NotNull(aggregator.State.Dedupe);

        aggregator.ReleaseCheckpoint();
        Assert.Null(aggregator.State.Dedupe);
        Assert.Equal(1, aggregator.RememberedIds);

        Apply(aggregator, Paused(At("12:00:10"), 10_000));
        aggregator.PrepareCheckpoint();
        Assert.Equal(2, Aggregator(state: RoundTrip(aggregator.State)).RememberedIds);
    }

    [Fact]
    public void A_state_written_with_the_two_id_arrays_is_read_and_written_back_packed()
    {
        var first = Started(At("12:00:00"));
        var before = Aggregator();
        Apply(before, first);
        // The form states had before the packed one: ids and times as two arrays.
        var (ids, seenAt) = (new long[] { EventIdHorizon.Hash(first.EventId) }, new long[] { Now.UtcTicks });
        var old = RoundTrip(before.State);
        (old.SeenIds, old.SeenAt) = (ids, seenAt);

        var aggregator = Aggregator(state: old);

        Assert.False(aggregator.Apply(first, Now, out _));
        aggregator.PrepareCheckpoint();
        var json = System.Text.Json.JsonSerializer.Serialize(aggregator.State, Keystone.Storage.KeystoneStateSerializer.Options);
        Assert.DoesNotContain("seenIds", json);
        Assert.DoesNotContain("seenAt", json);
        Assert.Contains("\"dedupe\":", json);
        Assert.Equal(1, Aggregator(state: RoundTrip(aggregator.State)).RememberedIds);
    }

    [Fact]
    public void View_returns_the_windows_overlapping_the_range()
    {
        var aggregator = Aggregator();
        WatchOf(aggregator, Started(At("12:00")), Started(At("12:05")), Started(At("12:10")));

        IEnumerable<DateTimeOffset> Starts(DateTimeOffset? from, DateTimeOffset? to) => aggregator.View(from, to).Windows.Select(w => w.Window.Start);

        Assert.Equal([At("12:00"), At("12:05"), At("12:10")], Starts(null, null));
        Assert.Equal([At("12:05")], Starts(At("12:05"), At("12:10")));
        Assert.Equal([At("12:00"), At("12:05"), At("12:10")], Starts(At("12:04:59.999"), At("12:10:00.001")));
        Assert.Equal([At("12:00")], Starts(null, At("12:05")));
        Assert.Equal([At("12:10")], Starts(At("12:10"), null));
        Assert.Empty(Starts(At("12:15"), null));
        Assert.Equal(User, aggregator.View(null, null).UserId);
        Assert.Equal(At("12:10"), aggregator.View(At("12:15"), null).LastActivity);
    }
}
