using System.Diagnostics;
using System.Diagnostics.Metrics;
using Keystone.Pipeline;

namespace Keystone.Bench;

/// <summary>
/// Where an event's latency goes on its way in: the silo's <c>keystone.event.lag</c> (now minus the event's publish
/// stamp as each stage finishes a batch, one event in 16 sampled), collected here per stage for the length of a run.
/// The difference between two stages' percentiles is about what the hop between them adds.
/// </summary>
public sealed class StageLag : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private Dictionary<string, LatencyHistogram> _stages = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    // Per 250 ms of the run: sampled events that reached ingest more than LateAtIngest after they were published.
    private readonly Dictionary<int, (int Count, double Worst)> _late = [];

    /// <summary>How late at ingest an event must be to count in <see cref="LateWindows"/>.</summary>
    public static readonly TimeSpan LateAtIngest = TimeSpan.FromMilliseconds(50);

    public StageLag()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineMetrics.MeterName && instrument.Name == "keystone.event.lag") listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((instrument, milliseconds, tags, state) =>
        {
            foreach (var tag in tags)
            {
                if (tag is not { Key: "stage", Value: string stage }) continue;
                lock (_lock)
                {
                    if (!_stages.TryGetValue(stage, out var histogram)) _stages[stage] = histogram = new LatencyHistogram();
                    histogram.Record((long)(milliseconds * 1000));
                    // When the late events came says what delayed them: a burst at each checkpoint is not a GC pause.
                    if (stage == "ingest" && milliseconds > LateAtIngest.TotalMilliseconds)
                    {
                        var window = (int)(_clock.ElapsedMilliseconds / 250);
                        var (count, worst) = _late.GetValueOrDefault(window);
                        _late[window] = (count + 1, Math.Max(worst, milliseconds));
                    }
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Forgets what was recorded so far (the warm-up); the run's clock starts again.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _stages = new Dictionary<string, LatencyHistogram>(StringComparer.Ordinal);
            _late.Clear();
            _clock.Restart();
        }
    }

    /// <summary>The 250 ms windows of the run (seconds since <see cref="Reset"/>) with at least
    /// <paramref name="minimum"/> sampled events late at ingest, and the latest of them.</summary>
    public IReadOnlyList<(double Second, int Count, double WorstMilliseconds)> LateWindows(int minimum)
    {
        lock (_lock) return [.. _late.Where(w => w.Value.Count >= minimum).OrderBy(w => w.Key).Select(w => (w.Key / 4.0, w.Value.Count, w.Value.Worst))];
    }

    /// <summary>Sampled events late at ingest over the run.</summary>
    public int Late
    {
        get { lock (_lock) return _late.Values.Sum(w => w.Count); }
    }

    /// <summary>Per stage, from the earliest stage on the path to the latest (by median).</summary>
    public IReadOnlyList<(string Stage, LatencySnapshot Lag)> Snapshot()
    {
        lock (_lock) return [.. _stages.Select(s => (s.Key, s.Value.Snapshot())).OrderBy(s => s.Item2.Percentile(0.5))];
    }

    public static string Describe(IReadOnlyList<(string Stage, LatencySnapshot Lag)> stages) =>
        string.Join("; ", stages.Select(s => $"{s.Stage} p50 {s.Lag.Percentile(0.5):0.0} ms, p99 {s.Lag.Percentile(0.99):0.0} ms"));

    public void Dispose() => _listener.Dispose();
}
