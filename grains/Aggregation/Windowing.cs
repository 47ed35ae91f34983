namespace Keystone.Aggregation;

/// <summary>
/// Tumbling event-time windows as Flink assigns them: epoch-aligned, of a fixed size, optionally shifted by an
/// offset (Flink's <c>TumblingEventTimeWindows.of(size, offset)</c>). An event at exactly <c>end</c> belongs to the
/// next window.
/// </summary>
public sealed class TumblingWindows
{
    public TumblingWindows(TimeSpan size, TimeSpan offset = default)
    {
        if (size <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(size), "window size must be positive");
        if (offset < TimeSpan.Zero || offset >= size) throw new ArgumentOutOfRangeException(nameof(offset), "offset must be in [0, size)");
        Size = size;
        Offset = offset;
    }

    public TimeSpan Size { get; }
    public TimeSpan Offset { get; }

    public TimeWindow Assign(DateTimeOffset timestamp)
    {
        // Relative to the Unix epoch, as Flink counts: UtcTicks count from 0001-01-01, which is not a whole number of
        // windows before the epoch for sizes such as 7 days or 7 minutes.
        var epoch = DateTimeOffset.UnixEpoch.UtcTicks;
        var t = timestamp.UtcTicks - epoch;
        var size = Size.Ticks;
        // Flink's getWindowStartWithOffset, written to stay correct for times before the epoch as well.
        var remainder = (t - Offset.Ticks) % size;
        if (remainder < 0) remainder += size;
        var start = epoch + t - remainder;
        return new TimeWindow(new DateTimeOffset(start, TimeSpan.Zero), new DateTimeOffset(start + size, TimeSpan.Zero));
    }
}

/// <summary>What becomes of an event given the watermark when it arrives.</summary>
public enum Lateness
{
    /// <summary>Its window has not fired yet.</summary>
    OnTime,

    /// <summary>Its window has fired, but the allowed lateness has not passed: it updates the window, which fires again.</summary>
    LateWithinLateness,

    /// <summary>Later than the allowed lateness: it goes to the late-events side output and changes no window.</summary>
    TooLate,
}

/// <summary>
/// Flink's lateness rule. A window fires when the watermark reaches its end; it is kept, and late events still
/// update it, until the watermark reaches <c>end + allowedLateness</c>.
/// </summary>
public static class LatenessPolicy
{
    public static Lateness Classify(TimeWindow window, DateTimeOffset? watermark, TimeSpan allowedLateness)
    {
        if (watermark is not { } wm || wm < window.End) return Lateness.OnTime;
        return wm < window.End + allowedLateness ? Lateness.LateWithinLateness : Lateness.TooLate;
    }
}

/// <summary>
/// Bounded-out-of-orderness watermarks, tracked per input (a fronting partition). For one input the watermark is
/// <c>max event time seen − bound</c>, where an event counts no later than it arrived (see <see cref="Progress"/>). Where several inputs feed one consumer, it is the minimum over the inputs
/// that are not idle; an input that has produced nothing for <see cref="IdleTimeout"/> (processing time) is idle and
/// no longer holds the others back, as with Flink's <c>withIdleness</c>. When every input is idle the watermark is the
/// highest of theirs, so windows still close.
/// </summary>
public sealed class WatermarkTracker(TimeSpan bound, TimeSpan idleTimeout)
{
    private readonly Dictionary<int, InputState> _inputs = [];

    public TimeSpan Bound { get; } = bound;
    public TimeSpan IdleTimeout { get; } = idleTimeout;

    /// <summary>
    /// How far an event moves event time: its own time, but never beyond its arrival. Flink's bounded-out-of-orderness
    /// watermark trusts the highest event time, so one producer with a clock an hour fast would make every other
    /// producer's events an hour late; bounded by arrival, the watermark stays within the out-of-orderness bound of
    /// the time events actually came in.
    /// </summary>
    public static DateTimeOffset Progress(DateTimeOffset eventTime, DateTimeOffset arrivedAt) => eventTime < arrivedAt ? eventTime : arrivedAt;

    /// <summary>Records an event that arrived (was ingested) at <paramref name="arrivedAt"/>: it counts as <see cref="Progress"/>.</summary>
    public void Observe(int input, DateTimeOffset eventTime, DateTimeOffset arrivedAt, DateTimeOffset now) =>
        Observe(input, Progress(eventTime, arrivedAt), now);

    /// <summary>Records an event time seen on an input at processing time <paramref name="now"/>.</summary>
    public void Observe(int input, DateTimeOffset eventTime, DateTimeOffset now)
    {
        if (!_inputs.TryGetValue(input, out var state)) _inputs[input] = state = new InputState();
        if (state.MaxEventTime is not { } max || eventTime > max) state.MaxEventTime = eventTime;
        state.LastActivity = now;
    }

    /// <summary>Sets an input's maximum event time directly (a restored checkpoint, or another operator's report).</summary>
    public void Restore(int input, DateTimeOffset? maxEventTime, DateTimeOffset lastActivity)
    {
        _inputs[input] = new InputState { MaxEventTime = maxEventTime, LastActivity = lastActivity };
    }

    /// <summary>Marks an input as alive without an event (it is caught up, not stuck).</summary>
    public void Touch(int input, DateTimeOffset now)
    {
        if (!_inputs.TryGetValue(input, out var state)) _inputs[input] = state = new InputState();
        state.LastActivity = now;
    }

    public DateTimeOffset? WatermarkOf(int input) =>
        _inputs.TryGetValue(input, out var s) && s.MaxEventTime is { } max ? max - Bound : null;

    public DateTimeOffset? MaxEventTimeOf(int input) => _inputs.TryGetValue(input, out var s) ? s.MaxEventTime : null;

    public bool IsIdle(int input, DateTimeOffset now) =>
        !_inputs.TryGetValue(input, out var s) || now - s.LastActivity >= IdleTimeout;

    /// <summary>The combined watermark at processing time <paramref name="now"/>, or null before any event.</summary>
    public DateTimeOffset? Current(DateTimeOffset now)
    {
        DateTimeOffset? activeMin = null, anyMax = null;
        var active = 0;
        foreach (var (_, s) in _inputs)
        {
            if (s.MaxEventTime is not { } max) continue;
            var wm = max - Bound;
            if (anyMax is null || wm > anyMax) anyMax = wm;
            if (now - s.LastActivity >= IdleTimeout) continue;
            active++;
            if (activeMin is null || wm < activeMin) activeMin = wm;
        }
        return active > 0 ? activeMin : anyMax;
    }

    public IReadOnlyDictionary<int, DateTimeOffset?> Inputs => _inputs.ToDictionary(kv => kv.Key, kv => kv.Value.MaxEventTime);

    private sealed class InputState
    {
        public DateTimeOffset? MaxEventTime;
        public DateTimeOffset LastActivity;
    }
}
