using Keystone.Ads;
using Keystone.Events;

namespace Keystone.UnitTests.Ads;

public class AdEventsTests
{
    private static readonly Guid Id = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
    private static readonly DateTimeOffset At = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static KeystoneEvent Event(string type, string payload) =>
        new(Id, type, At, "1.0", new EventSource("ads"), Payload.Parse(payload), EventMetadata.Empty);

    [Fact]
    public void Reads_the_campaigns_view_of_an_ad_event()
    {
        var ad = AdEvents.From(Event("ad.click",
            """{"profile_id":"p-1","tags":["a","b"],"ad_session_id":"s-1","campaign_id":"c-1","device_id":"d-1","cost_micros":2500,"placement":"x"}"""));
        Assert.Equal(new AdEvent(Id, AdEventKind.Click, At, "c-1", "s-1", "p-1", "d-1", 2500), ad);
    }

    [Fact]
    public void Optional_fields_default_and_a_repeated_name_counts_once()
    {
        // As Payload.GetString reads a repeated name: its first occurrence, even when that one is not a string.
        var ad = AdEvents.From(Event("ad.impression", """{"campaign_id":"c-1","ad_session_id":"s-1","campaign_id":"c-2","cost_micros":"free"}"""));
        Assert.Equal(new AdEvent(Id, AdEventKind.Impression, At, "c-1", "s-1", "", "", 0), ad);
        Assert.Null(AdEvents.From(Event("ad.click", """{"campaign_id":7,"ad_session_id":"s-1","campaign_id":"c-2"}""")));
    }

    [Theory]
    [InlineData("ad.click", """{"ad_session_id":"s-1"}""")]
    [InlineData("ad.click", """{"campaign_id":"c-1"}""")]
    [InlineData("ad.click", """{"campaign_id":"","ad_session_id":"s-1"}""")]
    [InlineData("ad.click", """{"campaign_id":"c-1","ad_session_id":null}""")]
    [InlineData("video.play.started", """{"campaign_id":"c-1","ad_session_id":"s-1"}""")]
    public void Is_null_without_a_campaign_and_a_session_or_for_other_events(string type, string payload) =>
        Assert.Null(AdEvents.From(Event(type, payload)));
}
