using System.Globalization;
using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.Pipeline;

/// <summary>
/// How far a producer's clock is trusted. An event stamped more than <see cref="Tolerance"/> after it arrived (the
/// ingest time its batch carries) is taken to have happened when it arrived: every consumer of event time — windows,
/// ad series, graph first/last seen, archive hours — sees it restamped with its arrival time and marked with
/// <c>metadata.clock_skew_ms</c> (how far ahead it was stamped) and <c>metadata.original_timestamp</c>. So it is still
/// counted, where it most likely happened, and one wrong clock cannot move time forward for other producers' events.
/// </summary>
public sealed class ClockSkew(TimeSpan tolerance)
{
    public const string SkewKey = "clock_skew_ms";
    public const string OriginalTimestampKey = "original_timestamp";

    public TimeSpan Tolerance { get; } = tolerance;

    /// <summary>How far ahead of its arrival an event is stamped, when that is beyond the tolerance; otherwise null.</summary>
    public TimeSpan? SkewOf(DateTimeOffset eventTime, DateTimeOffset arrivedAt)
    {
        var ahead = eventTime - arrivedAt;
        return ahead > Tolerance ? ahead : null;
    }

    /// <summary>The event as the pipeline uses it: itself, or, when stamped too far ahead, restamped at its arrival and marked.</summary>
    public KeystoneEvent Correct(KeystoneEvent e, DateTimeOffset arrivedAt)
    {
        if (SkewOf(e.Timestamp, arrivedAt) is not { } skew) return e;
        var metadata = e.Metadata
            .With(SkewKey, ((long)skew.TotalMilliseconds).ToString(CultureInfo.InvariantCulture))
            .With(OriginalTimestampKey, EventJson.FormatTimestamp(e.Timestamp));
        return e with { Timestamp = arrivedAt, Metadata = metadata };
    }

    /// <summary><see cref="Correct(KeystoneEvent, DateTimeOffset)"/> for a delivery; the same array when nothing needed it.</summary>
    public KeystoneEvent[] Correct(KeystoneEvent[] events, DateTimeOffset arrivedAt, out int corrected)
    {
        corrected = 0;
        KeystoneEvent[]? result = null;
        for (var i = 0; i < events.Length; i++)
        {
            var e = Correct(events[i], arrivedAt);
            if (ReferenceEquals(e, events[i])) continue;
            result ??= (KeystoneEvent[])events.Clone();
            result[i] = e;
            corrected++;
        }
        return result ?? events;
    }

    /// <summary>
    /// When a delivery arrived: the newest ingest time its batches carry, or <paramref name="now"/> (the consumer's
    /// clock) when none carries one. Ingest time rather than the consumer's clock, so that a delivery replayed from a
    /// log after a crash, or redelivered late, is judged exactly as it was the first time.
    /// </summary>
    public static DateTimeOffset ArrivalOf(IEnumerable<EventBatch> batches, DateTimeOffset now)
    {
        DateTimeOffset? newest = null;
        foreach (var b in batches)
            if (!b.IsBarrier && b.CreatedAt != default && b.CreatedAt != DateTimeOffset.MinValue && (newest is not { } n || b.CreatedAt > n)) newest = b.CreatedAt;
        return newest ?? now;
    }
}
