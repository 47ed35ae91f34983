using Keystone.Aggregation;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class LatenessPolicyTests
{
    private static readonly TimeSpan TwoMinutes = TimeSpan.FromMinutes(2);

    [Fact]
    public void Before_any_watermark_every_event_is_on_time()
    {
        Assert.Equal(Lateness.OnTime, LatenessPolicy.Classify(Window("12:00", "12:05"), null, TwoMinutes));
    }

    [Theory]
    [InlineData("11:00", Lateness.OnTime)]
    [InlineData("12:04:59.999", Lateness.OnTime)]
    // The window fires when the watermark reaches its end: from then on its events are late.
    [InlineData("12:05", Lateness.LateWithinLateness)]
    [InlineData("12:06:59.999", Lateness.LateWithinLateness)]
    // end + lateness = 12:07: the window is gone and its events go to the side output.
    [InlineData("12:07", Lateness.TooLate)]
    [InlineData("13:00", Lateness.TooLate)]
    public void Lateness_follows_the_watermark_against_end_and_end_plus_lateness(string watermark, Lateness expected)
    {
        Assert.Equal(expected, LatenessPolicy.Classify(Window("12:00", "12:05"), At(watermark), TwoMinutes));
    }

    [Fact]
    public void Without_allowed_lateness_an_event_of_a_fired_window_is_too_late()
    {
        var window = Window("12:00", "12:05");

        Assert.Equal(Lateness.OnTime, LatenessPolicy.Classify(window, At("12:04:59.999"), TimeSpan.Zero));
        Assert.Equal(Lateness.TooLate, LatenessPolicy.Classify(window, At("12:05"), TimeSpan.Zero));
    }
}
