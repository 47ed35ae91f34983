using System.ComponentModel.DataAnnotations;

namespace Keystone.Operations;

/// <summary>Alert thresholds (docs/operations.md and docs/api.md, GET /v1/alerts) and how often they are evaluated. Section <c>Keystone:Alerts</c>.</summary>
public sealed class AlertOptions
{
    public const string Section = "Keystone:Alerts";

    public TimeSpan EvaluationInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Event lag (now − event time) p99 at any stage above this fires <c>event-lag</c>.</summary>
    public TimeSpan MaxLag { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Processing time p99 of a stage's batch above this fires <c>processing-latency</c>.</summary>
    public TimeSpan MaxProcessingP99 { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Refused events (and refused request bodies) over everything received, above this fires <c>error-rate</c>.</summary>
    [Range(0.0, 1.0)]
    public double MaxErrorRate { get; set; } = 0.001;

    /// <summary>Throughput below this fraction of its own learned baseline fires <c>throughput</c>.</summary>
    [Range(0.0, 1.0)]
    public double MinThroughputFraction { get; set; } = 0.5;

    /// <summary>The baseline is only judged once it is at least this many events a second (an idle pipeline is not an outage).</summary>
    [Range(0.0, 10_000_000.0)]
    public double MinBaselineRate { get; set; } = 10;

    /// <summary>
    /// Windows with traffic the baseline must have learned before it is judged: one burst is not a baseline to fall
    /// below.
    /// </summary>
    [Range(1, 10_000)]
    public int MinBaselineWindows { get; set; } = 4;

    /// <summary>
    /// Consecutive low windows before <c>throughput</c> fires (Prometheus' <c>for:</c>). The window in which traffic
    /// stops is only partly busy and reads low; the next one is silent, i.e. idle, so a stop never fires.
    /// </summary>
    [Range(1, 10_000)]
    public int LowWindowsToFire { get; set; } = 2;

    /// <summary>
    /// Consecutive windows over their limit before <c>event-lag</c> and <c>processing-latency</c> fire (Prometheus'
    /// <c>for:</c>). One window over is what a restart's catch-up looks like: the quick start's graph p99 reached 1.3 s
    /// for one 15 s window after a Ctrl+C and a restart, and was 8 ms in the next.
    /// </summary>
    [Range(1, 10_000)]
    public int BreachWindowsToFire { get; set; } = 2;

    /// <summary>Weight of each new window in the throughput baseline (exponential moving average).</summary>
    [Range(0.001, 1.0)]
    public double BaselineWeight { get; set; } = 0.1;
}

/// <summary>What one evaluation window measured on this silo.</summary>
public sealed record AlertSample(
    DateTimeOffset At,
    TimeSpan Window,
    IReadOnlyDictionary<string, double> LagP99Ms,
    IReadOnlyDictionary<string, double> ProcessingP99Ms,
    long Received,
    long Refused,
    long Ingested);

public enum AlertState
{
    Ok,
    Firing,
    Resolved,
}

public sealed record AlertView(string Name, AlertState State, double? Value, double Threshold, string Detail, DateTimeOffset? Since, DateTimeOffset? ResolvedAt);

/// <summary>
/// The seed's alert rules as plain logic: fed one sample per window, it keeps each alert's state (firing since when,
/// resolved when) and reports transitions, which the silo logs.
/// </summary>
public sealed class AlertEvaluator(AlertOptions options)
{
    public const string Lag = "event-lag";
    public const string Processing = "processing-latency";
    public const string ErrorRate = "error-rate";
    public const string Throughput = "throughput";

    private readonly Dictionary<string, AlertView> _alerts = new()
    {
        [Lag] = new(Lag, AlertState.Ok, null, options.MaxLag.TotalMilliseconds, "no data yet", null, null),
        [Processing] = new(Processing, AlertState.Ok, null, options.MaxProcessingP99.TotalMilliseconds, "no data yet", null, null),
        [ErrorRate] = new(ErrorRate, AlertState.Ok, null, options.MaxErrorRate, "no data yet", null, null),
        [Throughput] = new(Throughput, AlertState.Ok, null, options.MinThroughputFraction, "no baseline yet", null, null),
    };

    public double? Baseline { get; private set; }

    /// <summary>Windows with traffic that have taught the baseline so far.</summary>
    public int BaselineWindows { get; private set; }

    private int _lowWindows;
    private readonly Dictionary<string, int> _breachWindows = new(StringComparer.Ordinal);

    // Over the limit for BreachWindowsToFire windows in a row; a firing alert stays firing while it is over.
    private bool Sustained(string name, bool over)
    {
        var windows = over ? _breachWindows.GetValueOrDefault(name) + 1 : 0;
        _breachWindows[name] = windows;
        return over && (windows >= options.BreachWindowsToFire || _alerts[name].State == AlertState.Firing);
    }

    public IReadOnlyList<AlertView> Alerts => [.. _alerts.Values];

    /// <summary>Applies a sample; returns the alerts whose state changed.</summary>
    public IReadOnlyList<AlertView> Evaluate(AlertSample s)
    {
        var changed = new List<AlertView>();

        var (lagStage, lag) = Worst(s.LagP99Ms);
        Judge(Lag, lag, Sustained(Lag, lag > options.MaxLag.TotalMilliseconds), lag is null ? "no events" : $"lag p99 {lag:0} ms at {lagStage} (limit {options.MaxLag.TotalMilliseconds:0} ms)");

        var (slowStage, processing) = Worst(s.ProcessingP99Ms);
        Judge(Processing, processing, Sustained(Processing, processing > options.MaxProcessingP99.TotalMilliseconds),
            processing is null ? "no batches" : $"processing p99 {processing:0} ms at {slowStage} (limit {options.MaxProcessingP99.TotalMilliseconds:0} ms)");

        double? rate = s.Received == 0 ? null : (double)s.Refused / s.Received;
        Judge(ErrorRate, rate, rate > options.MaxErrorRate, rate is null ? "nothing received" : $"{s.Refused} of {s.Received} refused ({rate:P2}, limit {options.MaxErrorRate:P2})");

        var perSecond = s.Ingested / Math.Max(0.001, s.Window.TotalSeconds);
        double? fraction = Baseline is { } baseline && baseline > 0 ? perSecond / baseline : null;
        if (s.Received == 0)
        {
            // Nothing was offered: producers are silent. An idle pipeline is not a failing one, and silence must not
            // teach the baseline either (traffic resuming at its usual rate would then look like a surge).
            _lowWindows = 0;
            Judge(Throughput, fraction, false, Baseline is null ? "idle: nothing received" : $"idle: nothing received (baseline {Baseline:0.0}/s)");
        }
        else
        {
            var judged = Baseline is { } b && b >= options.MinBaselineRate && BaselineWindows >= options.MinBaselineWindows;
            var below = judged && perSecond < options.MinThroughputFraction * Baseline!.Value;
            _lowWindows = below ? _lowWindows + 1 : 0;
            var firing = below && _lowWindows >= options.LowWindowsToFire;
            Judge(Throughput, fraction, firing, Baseline is null
                ? "no baseline yet"
                : $"{perSecond:0.0} events/s against a baseline of {Baseline:0.0}/s (fires below {options.MinThroughputFraction:P0} for {options.LowWindowsToFire} windows{(judged ? "" : $"; baseline learnt over {BaselineWindows} of {options.MinBaselineWindows} windows")})");
            // A drop does not teach the baseline that the drop is normal.
            if (!below)
            {
                Baseline = Baseline is { } old ? old + options.BaselineWeight * (perSecond - old) : perSecond;
                BaselineWindows++;
            }
        }
        return changed;

        void Judge(string name, double? value, bool firing, string detail)
        {
            var was = _alerts[name];
            AlertView now;
            if (firing)
                now = was.State == AlertState.Firing ? was with { Value = value, Detail = detail } : new AlertView(name, AlertState.Firing, value, was.Threshold, detail, s.At, null);
            else
                now = was.State == AlertState.Firing ? was with { State = AlertState.Resolved, Value = value, Detail = detail, ResolvedAt = s.At } : was with { Value = value, Detail = detail };
            _alerts[name] = now;
            if (now.State != was.State) changed.Add(now);
        }
    }

    private static (string? Stage, double? Value) Worst(IReadOnlyDictionary<string, double> byStage) =>
        byStage.Count == 0 ? (null, null) : byStage.MaxBy(p => p.Value) is var (k, v) ? (k, v) : (null, null);
}
