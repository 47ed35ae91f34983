using Keystone.Ads;
using Keystone.Storage;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ads;

public class CampaignLedgerTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;
    private static readonly AdsOptions Options = new();

    private static AdEvent Ad(AdEventKind kind, string session, DateTimeOffset at, long cost = 0, string profile = "p1", string device = "d1", Guid? id = null) =>
        new(id ?? Guid.NewGuid(), kind, at, "c1", session, profile, device, cost);

    private static AdBatch Batch(long sequence, params AdEvent[] events) => new(0, sequence, events);

    private static CampaignLedger New(CampaignSettings? settings = null, AdCampaignState? state = null) =>
        new("c1", Options, state ?? new AdCampaignState()) { Settings = settings };

    [Fact]
    public void Counts_are_exact_per_event_id_within_and_across_batches()
    {
        var ledger = New();
        var imp = Ad(AdEventKind.Impression, "s1", T0, cost: 2_000);
        var click = Ad(AdEventKind.Click, "s1", T0.AddSeconds(3));
        var (decisions, applied, duplicates) = ledger.Apply(Batch(1, imp, imp, click), T0);
        Assert.Equal((2, 1), (applied, duplicates));
        Assert.Equal([false, true, false], decisions.Select(d => d.Repeat));

        // Re-sent in a later delivery (a producer retry): recognised by id, recalled as repeats, nothing counted.
        (decisions, applied, duplicates) = ledger.Apply(Batch(2, imp, click), T0);
        Assert.Equal((0, 2), (applied, duplicates));
        Assert.All(decisions, d => Assert.True(d.Repeat));

        var totals = ledger.View(T0).Totals;
        Assert.Equal((1L, 1L, 0L, 2_000L), (totals.Impressions, totals.Clicks, totals.InvalidClicks, totals.SpendMicros));
    }

    [Fact]
    public void A_replayed_batch_changes_nothing_and_returns_the_original_decisions()
    {
        var ledger = New();
        var imp = Ad(AdEventKind.Impression, "s1", T0, cost: 1_000);
        var fast = Ad(AdEventKind.Click, "s1", T0.AddMilliseconds(100));
        var complete = Ad(AdEventKind.Complete, "s1", T0.AddSeconds(15));
        var (original, _, _) = ledger.Apply(Batch(7, imp, fast, complete), T0);

        var (replayed, applied, _) = ledger.Apply(Batch(7, imp, fast, complete), T0.AddSeconds(1));
        Assert.Equal(0, applied);
        Assert.Equal(original, replayed);
        Assert.Equal(new AdDecision(fast.EventId, false, InvalidReasons.TooFast), replayed[1]);
        Assert.Equal(1L, ledger.View(T0).Totals.Impressions);
    }

    [Fact]
    public void A_repeat_in_a_new_delivery_changes_nothing_and_comes_back_marked_with_its_recorded_verdict()
    {
        var ledger = New();
        var imp = Ad(AdEventKind.Impression, "s1", T0, cost: 1_000);
        var fast = Ad(AdEventKind.Click, "s1", T0.AddMilliseconds(100));
        var complete = Ad(AdEventKind.Complete, "s1", T0.AddSeconds(15));
        ledger.Apply(Batch(7, imp, fast, complete), T0);

        // The same events in a newer delivery: a producer's re-send, or a fronting-log replay numbered anew.
        var (repeated, applied, duplicates) = ledger.Apply(Batch(8, complete, fast, imp), T0.AddSeconds(1));

        Assert.Equal((0, 3), (applied, duplicates));
        Assert.Equal(
            [new AdDecision(complete.EventId, false, null, Repeat: true), new AdDecision(fast.EventId, false, InvalidReasons.TooFast, Repeat: true), new AdDecision(imp.EventId, true, null, Repeat: true)],
            repeated);
        Assert.Equal((1L, 1L, 1_000L), (ledger.View(T0).Totals.Impressions, ledger.View(T0).Totals.InvalidClicks, ledger.View(T0).Totals.SpendMicros));
    }

    [Fact]
    public void A_replay_below_the_position_applies_what_a_lost_activation_had_applied_only_in_memory()
    {
        // The durable state has applied delivery 5; a lost activation applied delivery 6 in memory only; the new
        // activation applied delivery 7 (position 7) before the operator replayed 6.
        var durable = New();
        durable.Apply(Batch(5, Ad(AdEventKind.Impression, "s0", T0, cost: 1_000)), T0);
        var again = New(state: durable.State);
        var lost = Ad(AdEventKind.Impression, "s1", T0.AddSeconds(1), cost: 1_000);
        again.Apply(Batch(7, Ad(AdEventKind.Impression, "s2", T0.AddSeconds(2), cost: 1_000)), T0);

        var (decisions, applied, duplicates) = again.Apply(Batch(6, lost), T0.AddSeconds(3));

        Assert.Equal((1, 0), (applied, duplicates));
        Assert.Equal([new AdDecision(lost.EventId, true, null)], decisions);
        Assert.Equal((3L, 3_000L), (again.View(T0).Totals.Impressions, again.View(T0).Totals.SpendMicros));
        // And a replay of it once more is recognised by id and position, with the same decision.
        Assert.Equal((0, 1), (again.Apply(Batch(6, lost), T0.AddSeconds(4)).Applied, again.Apply(Batch(6, lost), T0.AddSeconds(4)).Duplicates));
    }

    [Fact]
    public void Flagged_clicks_are_not_billed_and_are_counted_as_invalid_traffic_with_the_reason()
    {
        var ledger = New();
        var decisions = ledger.Apply(Batch(1,
            Ad(AdEventKind.Impression, "s1", T0, cost: 1_000),
            Ad(AdEventKind.Click, "s1", T0.AddSeconds(2), cost: 500),            // valid, CPC billed
            Ad(AdEventKind.Click, "ghost", T0.AddSeconds(3), cost: 500),         // no impression
            Ad(AdEventKind.Impression, "s2", T0.AddSeconds(4), cost: 1_000),
            Ad(AdEventKind.Click, "s2", T0.AddSeconds(4.1), cost: 500)), T0).Decisions;   // too fast

        Assert.Equal([true, true, false, true, false], decisions.Select(d => d.Billable));
        var view = ledger.View(T0);
        Assert.Equal((2L, 1L, 2L, 2_500L), (view.Totals.Impressions, view.Totals.Clicks, view.Totals.InvalidClicks, view.Totals.SpendMicros));
        Assert.Equal(1L, view.InvalidTraffic[InvalidReasons.NoImpression]);
        Assert.Equal(1L, view.InvalidTraffic[InvalidReasons.TooFast]);
        Assert.Equal(0L, view.InvalidTraffic[InvalidReasons.ClickFlood]);
        Assert.Equal(1L, view.Sessions.MissingImpression);
    }

    [Fact]
    public void The_K_plus_first_click_of_a_device_within_a_minute_is_flood()
    {
        var ledger = New();
        var events = new List<AdEvent>();
        for (var i = 0; i < 7; i++)
        {
            events.Add(Ad(AdEventKind.Impression, $"s{i}", T0.AddSeconds(i * 5), profile: $"p{i}"));
            events.Add(Ad(AdEventKind.Click, $"s{i}", T0.AddSeconds(i * 5 + 2), profile: $"p{i}", device: "bot"));
        }
        var clicks = ledger.Apply(Batch(1, [.. events]), T0).Decisions.Where((_, i) => i % 2 == 1).ToList();
        Assert.Equal([null, null, null, null, null, InvalidReasons.ClickFlood, InvalidReasons.ClickFlood], clicks.Select(c => c.InvalidReason));

        // A minute later the device is judged afresh.
        var later = ledger.Apply(Batch(2, Ad(AdEventKind.Impression, "x", T0.AddMinutes(3)), Ad(AdEventKind.Click, "x", T0.AddMinutes(3).AddSeconds(2), device: "bot")), T0).Decisions;
        Assert.Null(later[1].InvalidReason);
    }

    [Fact]
    public void Rates_are_over_impressions_and_undefined_without_any()
    {
        Assert.Equal(new AdRates(null, null, null), AdCountersState.Rates(new AdCounts(0, 3, 0, 0, 0, 0, 0, 0, 0)));
        var rates = AdCountersState.Rates(new AdCounts(200, 5, 9, 150, 120, 100, 80, 40, 0));
        Assert.Equal(0.025, rates.Ctr);
        Assert.Equal(0.4, rates.CompletionRate);
        Assert.Equal(0.2, rates.SkipRate);
    }

    [Fact]
    public void Frequency_cap_counts_impressions_of_the_profile_in_the_rolling_window()
    {
        var ledger = New(new CampaignSettings("cap", null, new FrequencyCap(2, TimeSpan.FromHours(1))));
        var now = T0.AddHours(2);
        ledger.Apply(Batch(1,
            Ad(AdEventKind.Impression, "a", now.AddMinutes(-61)),
            Ad(AdEventKind.Impression, "b", now.AddMinutes(-30)),
            Ad(AdEventKind.Impression, "c", now.AddMinutes(-30), profile: "other")), now);

        var p1 = ledger.Eligibility("p1", now);
        Assert.True(p1.Eligible);
        Assert.Equal(1, p1.ImpressionsInWindow);

        ledger.Apply(Batch(2, Ad(AdEventKind.Impression, "d", now.AddMinutes(-5))), now);
        p1 = ledger.Eligibility("p1", now);
        Assert.False(p1.Eligible);
        Assert.Equal(2, p1.ImpressionsInWindow);
        Assert.Contains("frequency cap reached", Assert.Single(p1.Reasons));

        // The window rolls: 31 minutes later the older of the two has left it.
        Assert.True(ledger.Eligibility("p1", now.AddMinutes(31)).Eligible);
        Assert.True(ledger.Eligibility("never-seen", now).Eligible);
    }

    [Fact]
    public void A_campaign_stops_being_eligible_when_spend_reaches_its_budget()
    {
        var ledger = New(new CampaignSettings("budget", 3_000, null));
        ledger.Apply(Batch(1, Ad(AdEventKind.Impression, "a", T0, 1_000), Ad(AdEventKind.Impression, "b", T0.AddSeconds(1), 1_000)), T0);
        var budget = ledger.Budget(T0);
        Assert.Equal((2_000L, 1_000L, false), (budget.SpentMicros, budget.RemainingMicros!.Value, budget.Exhausted));
        Assert.True(ledger.Eligibility("p1", T0).Eligible);

        ledger.Apply(Batch(2, Ad(AdEventKind.Impression, "c", T0.AddSeconds(2), 1_000)), T0);
        budget = ledger.Budget(T0);
        Assert.Equal((3_000L, 0L, true, T0.AddSeconds(2)), (budget.SpentMicros, budget.RemainingMicros!.Value, budget.Exhausted, budget.ExhaustedAt));
        var answer = ledger.Eligibility("p1", T0);
        Assert.False(answer.Eligible);
        Assert.Contains("budget exhausted", Assert.Single(answer.Reasons));

        // More budget makes it eligible again.
        ledger.Settings = new CampaignSettings("budget", 10_000, null);
        ledger.OnSettingsChanged();
        Assert.True(ledger.Eligibility("p1", T0).Eligible);
        Assert.Null(ledger.Budget(T0).ExhaustedAt);
    }

    [Fact]
    public void Every_figure_is_kept_per_minute_and_per_hour()
    {
        var ledger = New();
        ledger.Apply(Batch(1,
            Ad(AdEventKind.Impression, "a", T0.AddSeconds(10), 100),
            Ad(AdEventKind.Skip, "a", T0.AddSeconds(20)),
            Ad(AdEventKind.Impression, "b", T0.AddMinutes(1).AddSeconds(5), 100),
            Ad(AdEventKind.Complete, "b", T0.AddMinutes(1).AddSeconds(35))), T0);

        var minutes = ledger.Series(hourly: false).Windows;
        Assert.Equal([T0, T0.AddMinutes(1)], minutes.Select(w => w.Start));
        Assert.Equal((1L, 1L, 0L, 100L), (minutes[0].Counts.Impressions, minutes[0].Counts.Skips, minutes[0].Counts.Completes, minutes[0].Counts.SpendMicros));
        Assert.Equal(1.0, minutes[1].Rates.CompletionRate);
        var hour = Assert.Single(ledger.Series(hourly: true).Windows);
        Assert.Equal((T0, T0.AddHours(1), 2L, 200L), (hour.Start, hour.End, hour.Counts.Impressions, hour.Counts.SpendMicros));
    }

    [Fact]
    public void Only_the_newest_windows_are_kept_and_older_events_still_count_in_totals()
    {
        var ledger = new CampaignLedger("c1", new AdsOptions { MinuteWindows = 3 }, new AdCampaignState());
        for (var m = 0; m < 5; m++) ledger.Apply(Batch(m + 1, Ad(AdEventKind.Impression, $"s{m}", T0.AddMinutes(m))), T0);
        ledger.Apply(Batch(9, Ad(AdEventKind.Impression, "late", T0.AddSeconds(30))), T0);

        Assert.Equal([T0.AddMinutes(2), T0.AddMinutes(3), T0.AddMinutes(4)], ledger.Series(false).Windows.Select(w => w.Start));
        Assert.Equal(6L, ledger.View(T0).Totals.Impressions);
    }

    [Fact]
    public void State_written_and_read_back_keeps_counts_decisions_and_what_was_applied()
    {
        var ledger = New();
        var imp = Ad(AdEventKind.Impression, "s1", T0, cost: 1_000);
        var ghost = Ad(AdEventKind.Click, "nobody", T0.AddSeconds(1));
        ledger.Apply(Batch(3, imp, ghost), T0);
        ledger.PrepareCheckpoint(T0);

        var serializer = new KeystoneStateSerializer();
        var restored = serializer.Deserialize<AdCampaignState>(serializer.Serialize(ledger.State))!;
        var again = New(state: restored);

        // The same delivery replayed: recognised by position, decisions recalled from the stored marks.
        var (decisions, applied, _) = again.Apply(Batch(3, imp, ghost), T0);
        Assert.Equal(0, applied);
        Assert.Equal([new AdDecision(imp.EventId, true, null), new AdDecision(ghost.EventId, false, InvalidReasons.NoImpression)], decisions);
        // Re-sent in a new delivery: recognised by id.
        Assert.Equal(2, again.Apply(Batch(4, imp, ghost), T0).Duplicates);
        Assert.Equal((1L, 1L, 1_000L), (again.View(T0).Totals.Impressions, again.View(T0).Totals.InvalidClicks, again.View(T0).Totals.SpendMicros));
    }

    [Fact]
    public void A_state_with_the_id_pairs_of_older_checkpoints_still_knows_its_ids_and_writes_them_packed()
    {
        var imp = Ad(AdEventKind.Impression, "s1", T0, cost: 1_000);
        // The form campaigns wrote before the packed one: (id hash, seen-at ticks) pairs of little-endian longs.
        var pair = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(pair, Keystone.Aggregation.EventIdHorizon.Hash(imp.EventId));
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(pair.AsSpan(8), T0.UtcTicks);
        var ledger = New(state: new AdCampaignState { Seen = pair });

        Assert.Equal(1, ledger.Apply(Batch(1, imp), T0).Duplicates);
        ledger.PrepareCheckpoint(T0);
        var json = new KeystoneStateSerializer().Serialize(ledger.State).ToString();
        Assert.DoesNotContain("\"seen\":", json);
        Assert.Contains("\"dedupe\":", json);

        // Once written, the copies go; the ledger still knows the id.
        ledger.ReleaseCheckpoint();
        Assert.Null(ledger.State.Dedupe);
        Assert.Null(ledger.State.Sessions);
        Assert.Equal(1, ledger.Apply(Batch(2, imp), T0).Duplicates);
    }
}
