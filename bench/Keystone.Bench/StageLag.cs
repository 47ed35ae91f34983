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
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Forgets what was recorded so far (the warm-up).</summary>
    public void Reset()
    {
        lock (_lock) _stages = new Dictionary<string, LatencyHistogram>(StringComparer.Ordinal);
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
