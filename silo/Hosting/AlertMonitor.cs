using Keystone.Operations;
using Keystone.Pipeline;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>One evaluation window on this silo, kept for the status page's charts.</summary>
public sealed record HistoryPoint(DateTimeOffset At, double EventsPerSecond, IReadOnlyDictionary<string, double> LagP99Ms);

/// <summary>Evaluates the alert rules on this silo's pipeline metrics every interval, logs transitions, and keeps the result for <c>GET /v1/alerts</c>.</summary>
internal sealed class AlertMonitor(PipelineMetrics metrics, IOptions<AlertOptions> options, TimeProvider time, ILogger<AlertMonitor> logger) : BackgroundService
{
    private readonly AlertEvaluator _evaluator = new(options.Value);
    private readonly Lock _lock = new();
    private PipelineTotals _previous = metrics.Snapshot();
    private DateTimeOffset _previousAt = time.GetUtcNow();
    private readonly Queue<HistoryPoint> _history = new();

    /// <summary>How far back <see cref="History"/> reaches: the status page charts the last 15 minutes.</summary>
    public static readonly TimeSpan HistoryRetention = TimeSpan.FromMinutes(15);

    /// <summary>The windows evaluated within <see cref="HistoryRetention"/>, oldest first.</summary>
    public IReadOnlyList<HistoryPoint> History
    {
        get
        {
            lock (_lock) return [.. _history];
        }
    }

    public DateTimeOffset? EvaluatedAt { get; private set; }

    public (IReadOnlyList<AlertView> Alerts, double? Baseline, DateTimeOffset? At) Current
    {
        get
        {
            lock (_lock) return (_evaluator.Alerts, _evaluator.Baseline, EvaluatedAt);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.EvaluationInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) Evaluate();
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal void Evaluate()
    {
        var now = time.GetUtcNow();
        var totals = metrics.Snapshot();
        var stages = metrics.TakeStageWindow();
        var refused = totals.Rejected - _previous.Rejected + totals.BadRequests - _previous.BadRequests;
        var ingested = totals.Ingested - _previous.Ingested;
        var sample = new AlertSample(now, now - _previousAt,
            stages.Where(s => s.Value.Lag.Count > 0).ToDictionary(s => s.Key, s => s.Value.Lag.Percentile(0.99)),
            stages.Where(s => s.Value.Processing.Count > 0).ToDictionary(s => s.Key, s => s.Value.Processing.Percentile(0.99)),
            ingested + refused, refused, ingested);
        _previous = totals;
        _previousAt = now;
        IReadOnlyList<AlertView> changed;
        lock (_lock)
        {
            changed = _evaluator.Evaluate(sample);
            EvaluatedAt = now;
            _history.Enqueue(new HistoryPoint(now, ingested / Math.Max(0.001, sample.Window.TotalSeconds), sample.LagP99Ms));
            while (_history.TryPeek(out var oldest) && oldest.At < now - HistoryRetention) _history.Dequeue();
        }
        foreach (var a in changed)
        {
            if (a.State == AlertState.Firing) logger.LogWarning("Alert {Alert} firing: {Detail}", a.Name, a.Detail);
            else logger.LogInformation("Alert {Alert} resolved: {Detail}", a.Name, a.Detail);
        }
    }
}
