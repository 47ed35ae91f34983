using Keystone.Ads;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ads;

public class ClickFraudRulesTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;
    private static readonly ClickFraudRules Rules = new(new FraudOptions
    {
        MinClickDelay = TimeSpan.FromMilliseconds(300), MaxClicksPerMinute = 3, BurstFactor = 4, BurstMinImpressions = 50,
        BaselineMinImpressions = 200, MinBaselineCtr = 0.01,
    });

    // A click 2 s after its impression, nothing else going on: valid.
    private static ClickContext Honest() => new(T0.AddSeconds(2), T0, 0, 0, 100, 1, 1_000, 20);

    [Fact]
    public void An_ordinary_click_is_valid() => Assert.Null(Rules.Evaluate(Honest()));

    [Fact]
    public void A_click_without_an_impression_in_its_session_is_invalid() =>
        Assert.Equal(InvalidReasons.NoImpression, Rules.Evaluate(Honest() with { ImpressionAt = null }));

    [Theory]
    [InlineData(0, InvalidReasons.TooFast)]
    [InlineData(299, InvalidReasons.TooFast)]
    [InlineData(-50, InvalidReasons.TooFast)]   // before its impression: no human does that either
    [InlineData(300, null)]
    [InlineData(5_000, null)]
    public void A_click_faster_than_a_human_after_the_impression_is_invalid(int afterMs, string? expected) =>
        Assert.Equal(expected, Rules.Evaluate(Honest() with { ClickAt = T0.AddMilliseconds(afterMs) }));

    [Theory]
    [InlineData(2, 0, null)]
    [InlineData(3, 0, InvalidReasons.ClickFlood)]
    [InlineData(0, 2, null)]
    [InlineData(0, 3, InvalidReasons.ClickFlood)]
    public void More_than_K_clicks_per_device_or_profile_per_minute_are_invalid(int device, int profile, string? expected) =>
        Assert.Equal(expected, Rules.Evaluate(Honest() with { DeviceClicksLastMinute = device, ProfileClicksLastMinute = profile }));

    [Fact]
    public void A_CTR_burst_against_the_campaigns_own_baseline_is_invalid()
    {
        // Baseline 2 % (20 / 1,000); threshold 4 × 2 % = 8 %. With 100 impressions this minute, the 8th valid click
        // makes 8 % (not above), the 9th would make 9 %.
        Assert.Null(Rules.Evaluate(Honest() with { MinuteValidClicks = 7 }));
        Assert.Equal(InvalidReasons.CtrBurst, Rules.Evaluate(Honest() with { MinuteValidClicks = 8 }));
    }

    [Fact]
    public void Bursts_are_not_judged_on_thin_data()
    {
        // Too few impressions this minute, or too thin a baseline: a high CTR proves nothing yet.
        Assert.Null(Rules.Evaluate(Honest() with { MinuteImpressions = 49, MinuteValidClicks = 40 }));
        Assert.Null(Rules.Evaluate(Honest() with { BaselineImpressions = 199, MinuteValidClicks = 40 }));
    }

    [Fact]
    public void A_campaign_without_clicks_yet_has_a_floor_under_its_baseline()
    {
        // Baseline 0 clicks → floor 1 % → threshold 4 %: 3 clicks in 100 pass, the 5th does not.
        var cold = Honest() with { BaselineValidClicks = 0 };
        Assert.Null(Rules.Evaluate(cold with { MinuteValidClicks = 3 }));
        Assert.Equal(InvalidReasons.CtrBurst, Rules.Evaluate(cold with { MinuteValidClicks = 4 }));
    }

    [Fact]
    public void The_first_rule_that_fires_names_the_reason()
    {
        var everything = new ClickContext(T0, null, 10, 10, 100, 50, 1_000, 10);
        Assert.Equal(InvalidReasons.NoImpression, Rules.Evaluate(everything));
        Assert.Equal(InvalidReasons.TooFast, Rules.Evaluate(everything with { ImpressionAt = T0 }));
    }
}
