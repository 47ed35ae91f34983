namespace Keystone;

/// <summary>
/// Latencies of the last minute or so, beside a lifetime histogram: two histograms that take turns, each covering one
/// <paramref name="window"/>, so a snapshot covers between one and two windows back from now. A lifetime percentile
/// keeps a start-up's first slow seconds for good; an operator wants to know how a topic is doing now.
/// Not thread-safe: grains own one each.
/// </summary>
public sealed class RecentLatency(TimeSpan window)
{
    private LatencyHistogram _current = new(), _previous = new();
    private long _slot = long.MinValue;

    public TimeSpan Window { get; } = window > TimeSpan.Zero ? window : throw new ArgumentOutOfRangeException(nameof(window), window, "the window must be positive");

    /// <summary>Moves to the window <paramref name="now"/> falls in; call before recording what arrived at that time.</summary>
    public void Advance(DateTimeOffset now)
    {
        var slot = now.UtcTicks / Window.Ticks;
        if (slot <= _slot) return;
        if (slot == _slot + 1) (_previous, _current) = (_current, _previous);
        else _previous.Clear();
        _current.Clear();
        _slot = slot;
    }

    public void Record(long micros, long count = 1) => _current.Record(micros, count);

    public LatencySnapshot Snapshot(DateTimeOffset now)
    {
        Advance(now);
        return LatencySnapshot.Merge([_previous.Snapshot(), _current.Snapshot()]);
    }

    public void Clear()
    {
        _current.Clear();
        _previous.Clear();
    }
}
