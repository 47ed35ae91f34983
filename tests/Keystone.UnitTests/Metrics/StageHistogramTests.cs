using Keystone.Pipeline;
using Keystone.UnitTests.Support;
using Microsoft.Extensions.Options;

namespace Keystone.UnitTests.Metrics;

public class StageHistogramTests
{
    [Fact]
    public void Stage_batches_feed_the_alert_window_and_the_window_empties_when_taken()
    {
        using var metrics = new PipelineMetrics();
        var e = Sample.PlayStarted();
        metrics.StageBatch("router", TimeSpan.FromMilliseconds(4), [e, e], e.Timestamp.AddSeconds(2));
        var window = metrics.TakeStageWindow();
        Assert.Equal((2L, 1L), (window["router"].Lag.Count, window["router"].Processing.Count));
        Assert.InRange(window["router"].Lag.Percentile(0.99), 1_900, 2_100);
        Assert.Empty(metrics.TakeStageWindow());
    }

    [Fact]
    public void Turned_off_they_record_nothing()
    {
        using var metrics = new PipelineMetrics(null, Options.Create(new MetricsOptions { StageHistograms = false }));
        var e = Sample.PlayStarted();
        metrics.StageBatch("router", TimeSpan.FromMilliseconds(4), [e], e.Timestamp);
        Assert.Empty(metrics.TakeStageWindow());
    }
}
