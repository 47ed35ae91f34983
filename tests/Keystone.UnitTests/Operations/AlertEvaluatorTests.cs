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
    public void Lag_above_five_minutes_for_two_windows_fires_and_resolves_with_the_stage_named()
    {
        var e = new AlertEvaluator(new AlertOptions());
        Assert.Empty(e.Evaluate(S(0, lag: 299_000)));
        Assert.Empty(e.Evaluate(S(1, lag: 301_000)));
        var fired = Assert.Single(e.Evaluate(S(2, lag: 301_000)));
        Assert.Equal((AlertEvaluator.Lag, AlertState.Firing, T0 + Window * 2), (fired.Name, fired.State, fired.Since));
        Assert.Contains("at router", fired.Detail);
        Assert.Empty(e.Evaluate(S(3, lag: 400_000)));
        var resolved = Assert.Single(e.Evaluate(S(4, lag: 1_000)));
        Assert.Equal((AlertState.Resolved, T0 + Window * 2, T0 + Window * 4), (resolved.State, resolved.Since, resolved.ResolvedAt));
    }

    [Fact]
    public void Processing_p99_above_one_second_for_two_windows_fires()
    {
        var e = new AlertEvaluator(new AlertOptions());
        e.Evaluate(S(0, processing: 999));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Processing).State);
        e.Evaluate(S(1, processing: 1_001));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Processing).State);
        e.Evaluate(S(2, processing: 1_001));
        Assert.Equal(AlertState.Firing, Get(e, AlertEvaluator.Processing).State);
    }

    [Fact]
    public void One_window_over_the_latency_limits_is_a_catch_up_not_an_alert()
    {
        // A restart replays what the last checkpoint did not cover: one slow window, then normal again.
        var e = new AlertEvaluator(new AlertOptions());
        Assert.Empty(e.Evaluate(S(0, lag: 50, processing: 5)));
        Assert.Empty(e.Evaluate(S(1, lag: 11_533_000, processing: 1_278)));
        Assert.Empty(e.Evaluate(S(2, lag: 135, processing: 8)));
        // The count starts over: two windows over, apart, are not two in a row.
        Assert.Empty(e.Evaluate(S(3, lag: 50, processing: 1_500)));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Processing).State);
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Lag).State);
    }

    [Fact]
    public void With_one_breach_window_configured_the_first_window_over_fires()
    {
        var e = new AlertEvaluator(new AlertOptions { BreachWindowsToFire = 1 });
        e.Evaluate(S(0, processing: 1_001));
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
        var e = new AlertEvaluator(new AlertOptions { BaselineWeight = 0.5, MinBaselineWindows = 2, LowWindowsToFire = 1 });
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

    // The report: a burst of 5,000 events, then silence, and the alert said "0.0 events/s against a baseline of 314.2/s".
    [Fact]
    public void A_burst_followed_by_silence_never_fires()
    {
        var e = new AlertEvaluator(new AlertOptions());
        var window = TimeSpan.FromSeconds(15);
        AlertSample W(int n, long events) => new(T0 + window * n, window, new Dictionary<string, double>(), new Dictionary<string, double>(), events, 0, events);
        var changes = new List<AlertView>();
        changes.AddRange(e.Evaluate(W(0, 4_713)));   // 314.2/s
        changes.AddRange(e.Evaluate(W(1, 287)));
        for (var n = 2; n < 40; n++) changes.AddRange(e.Evaluate(W(n, 0)));
        Assert.Empty(changes);
        var a = Get(e, AlertEvaluator.Throughput);
        Assert.Equal(AlertState.Ok, a.State);
        Assert.StartsWith("idle: nothing received", a.Detail);
    }

    [Fact]
    public void Steady_traffic_that_stops_mid_window_is_idle_not_an_outage()
    {
        var e = new AlertEvaluator(new AlertOptions());
        for (var n = 0; n < 10; n++) e.Evaluate(S(n, received: 10_000));   // 1,000/s learnt over 10 windows
        Assert.Empty(e.Evaluate(S(10, received: 2_000)));                   // traffic stopped 2 s into the window: one low window
        Assert.Empty(e.Evaluate(S(11, received: 0)));                       // then silence
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Throughput).State);
        Assert.Equal(1_000, e.Baseline);                                    // neither the low window nor the silence was learnt
    }

    [Fact]
    public void A_sustained_drop_under_traffic_still_fires_after_the_configured_windows()
    {
        var e = new AlertEvaluator(new AlertOptions());
        for (var n = 0; n < 4; n++) e.Evaluate(S(n, received: 10_000));
        Assert.Empty(e.Evaluate(S(4, received: 3_000)));
        var fired = Assert.Single(e.Evaluate(S(5, received: 3_000)));
        Assert.Equal((AlertEvaluator.Throughput, AlertState.Firing, T0 + Window * 5), (fired.Name, fired.State, fired.Since));
        Assert.Contains("300.0 events/s against a baseline of 1000.0/s", fired.Detail);
        var resolved = Assert.Single(e.Evaluate(S(6, received: 0)));      // producers went silent: idle, resolved
        Assert.Equal(AlertState.Resolved, resolved.State);
    }

    [Fact]
    public void A_baseline_is_not_judged_before_it_has_learnt_enough_windows()
    {
        var e = new AlertEvaluator(new AlertOptions());
        e.Evaluate(S(0, received: 10_000));
        e.Evaluate(S(1, received: 10_000));
        e.Evaluate(S(2, received: 1_000));
        e.Evaluate(S(3, received: 1_000));
        Assert.Equal(AlertState.Ok, Get(e, AlertEvaluator.Throughput).State);
        Assert.Contains("baseline learnt over", Get(e, AlertEvaluator.Throughput).Detail);
    }
}
