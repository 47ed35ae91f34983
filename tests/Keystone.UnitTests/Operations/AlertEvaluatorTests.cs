using Keystone.Operations;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Operations;

public class AlertEvaluatorTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    private static AlertSample S(int n, double lag = 50, double processing = 5, long received = 1_000, long refused = 0, long? ingested = null) =>
        new(T0 + Window * n, Window, new Dictionary<string, double> { ["router"] = lag, ["ingest"] = lag / 2 },
            new Dictionary<string, double> { ["router"] = processing }, received, refused, ingested ?? received - refused);

    private static AlertView Get(AlertEvaluator e, string name) => e.Alerts.Single(a => a.Name == name);

    [Fact]
    public void Lag_above_five_minutes_fires_and_resolves_with_the_stage_named()
    {
        var e = new AlertEvaluator(new AlertOptions());
        Assert.Empty(e.Evaluate(S(0, lag: 299_000)));
        var fired = Assert.Single(e.Evaluate(S(1, lag: 301_000)));
        Assert.Equal((AlertEvaluator.Lag, AlertState.Firing, T0 + Window), (fired.Name, fired.State, fired.Since));
        Assert.Contains("at router", fired.Detail);
        Assert.Empty(e.Evaluate(S(2, lag: 400_000)));
        var resolved = Assert.Single(e.Evaluate(S(3, lag: 1_000)));
        Assert.Equal((AlertState.Resolved, T0 + Window, T0 + Window * 3), (resolved.State, resolved.Since, resolved.ResolvedAt));
    }

    [Fact]
    public void Processing_p99_above_one_second_fires()
    {
        var e = new AlertEvaluator(new AlertOptions());
        e.Evaluate(S(0, processing: 999));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Processing).State);
        e.Evaluate(S(1, processing: 1_001));
        Assert.Equal(AlertState.Firing, Get(e, AlertEvaluator.Processing).State);
    }

    [Fact]
    public void Error_rate_above_a_tenth_of_a_percent_fires()
    {
        var e = new AlertEvaluator(new AlertOptions());
        e.Evaluate(S(0, received: 10_000, refused: 10));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.ErrorRate).State);
        e.Evaluate(S(1, received: 10_000, refused: 11));
        var a = Get(e, AlertEvaluator.ErrorRate);
        Assert.Equal((AlertState.Firing, 0.0011), (a.State, a.Value));
        e.Evaluate(S(2, received: 0, refused: 0));
        Assert.Equal(AlertState.Resolved, Get(e, AlertEvaluator.ErrorRate).State);
    }

    [Fact]
    public void Throughput_below_half_its_learned_baseline_fires_and_the_drop_is_not_learned()
    {
        var e = new AlertEvaluator(new AlertOptions { BaselineWeight = 0.5 });
        e.Evaluate(S(0, received: 10_000));          // 1,000/s: the first window sets the baseline
        Assert.Equal(1_000, e.Baseline);
        e.Evaluate(S(1, received: 6_000));           // 600/s: above half, learned → 800
        Assert.Equal(800, e.Baseline);
        e.Evaluate(S(2, received: 3_000));           // 300/s < 400: fires, baseline kept
        Assert.Equal((AlertState.Firing, 800.0), (Get(e, AlertEvaluator.Throughput).State, e.Baseline));
        e.Evaluate(S(3, received: 8_000));
        Assert.Equal(AlertState.Resolved, Get(e, AlertEvaluator.Throughput).State);
    }

    [Fact]
    public void An_idle_pipeline_is_not_an_outage()
    {
        var e = new AlertEvaluator(new AlertOptions());
        e.Evaluate(S(0, received: 50));   // 5/s baseline, under the 10/s floor
        e.Evaluate(S(1, received: 0));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Throughput).State);
    }
}
