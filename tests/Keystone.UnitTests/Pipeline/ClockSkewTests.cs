using Keystone.Ads;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Pipeline;

public class ClockSkewTests
{
    private static readonly DateTimeOffset Arrived = new(2024, 12, 26, 12, 40, 0, TimeSpan.Zero);
    private static readonly ClockSkew Skew = new(TimeSpan.FromMinutes(1));

    private static KeystoneEvent At(DateTimeOffset t) => Sample.PlayStarted() with { Timestamp = t };

    [Fact]
    public void Events_up_to_the_tolerance_ahead_of_their_arrival_keep_their_time_unmarked()
    {
        foreach (var t in new[] { Arrived.AddHours(-3), Arrived, Arrived.AddSeconds(59), Arrived.AddMinutes(1) })
        {
            var e = At(t);
            Assert.Null(Skew.SkewOf(t, Arrived));
            Assert.Same(e, Skew.Correct(e, Arrived));
        }
    }

    [Fact]
    public void An_event_further_ahead_is_restamped_at_its_arrival_and_marked_with_its_own_time()
    {
        var e = At(Arrived.AddMinutes(50).AddMilliseconds(1));

        var corrected = Skew.Correct(e, Arrived);

        Assert.Equal(Arrived, corrected.Timestamp);
        Assert.Equal("3000001", corrected.Metadata[ClockSkew.SkewKey]);
        Assert.Equal(EventJson.FormatTimestamp(e.Timestamp), corrected.Metadata[ClockSkew.OriginalTimestampKey]);
        // Everything else is the event as sent, its own metadata included.
        Assert.Equal((e.EventId, e.EventType, e.Payload), (corrected.EventId, corrected.EventType, corrected.Payload));
        Assert.Equal("trace-789", corrected.Metadata["trace_id"]);
    }

    [Fact]
    public void A_delivery_is_copied_only_when_something_in_it_was_restamped()
    {
        KeystoneEvent[] fine = [At(Arrived), At(Arrived.AddSeconds(-5))];
        Assert.Same(fine, Skew.Correct(fine, Arrived, out var none));
        Assert.Equal(0, none);

        KeystoneEvent[] mixed = [At(Arrived), At(Arrived.AddMinutes(30)), At(Arrived.AddSeconds(-5))];
        var corrected = Skew.Correct(mixed, Arrived, out var count);
        Assert.Equal(1, count);
        Assert.Equal([Arrived, Arrived, Arrived.AddSeconds(-5)], corrected.Select(e => e.Timestamp));
        Assert.Same(mixed[0], corrected[0]);
        Assert.Equal(Arrived.AddMinutes(30), mixed[1].Timestamp);
    }

    [Fact]
    public void Arrival_is_the_newest_ingest_time_of_a_delivery_or_the_consumers_clock_when_none_is_carried()
    {
        var now = Arrived.AddMinutes(5);
        EventBatch Batch(DateTimeOffset createdAt) => new(Guid.NewGuid(), 0, createdAt, [At(Arrived)]);

        Assert.Equal(Arrived.AddSeconds(2), ClockSkew.ArrivalOf([Batch(Arrived), Batch(Arrived.AddSeconds(2)), Batch(Arrived.AddSeconds(1))], now));
        Assert.Equal(now, ClockSkew.ArrivalOf([Batch(default), Batch(DateTimeOffset.MinValue)], now));
        Assert.Equal(Arrived, ClockSkew.ArrivalOf([Batch(default), Batch(Arrived)], now));
    }

    [Fact]
    public void Ad_series_count_a_skewed_event_in_the_minute_and_hour_it_arrived()
    {
        var impression = new KeystoneEvent(Guid.NewGuid(), "ad.impression", Arrived.AddMinutes(50), "1.0", new EventSource("ad-server"),
            Payload.Create(("campaign_id", "c1"), ("ad_session_id", "s1"), ("profile_id", "p1"), ("device_id", "d1"), ("cost_micros", 1_000L)),
            EventMetadata.Empty);
        var ledger = new CampaignLedger("c1", new AdsOptions(), new AdCampaignState());

        ledger.Apply(new AdBatch(0, 1, [AdEvents.From(Skew.Correct(impression, Arrived))!]), Arrived);

        Assert.Equal(Arrived, Assert.Single(ledger.Series(hourly: false).Windows).Start);
        Assert.Equal(Arrived.AddMinutes(-40), Assert.Single(ledger.Series(hourly: true).Windows).Start);
        Assert.Equal(1, ledger.View(Arrived).Totals.Impressions);
    }
}
