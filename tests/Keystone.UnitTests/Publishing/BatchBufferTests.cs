using System.Text;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Publishing;

public class BatchBufferTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;

    private static KeystoneEvent Event() => Sample.PlayStarted();

    [Fact]
    public void Empty_buffer_never_flushes_and_has_no_deadline()
    {
        var buffer = new BatchBuffer(10, 1000, TimeSpan.FromMilliseconds(100));
        Assert.Equal(FlushReason.None, buffer.Check(T0.AddHours(1)));
        Assert.Null(buffer.DueAt);
        Assert.Null(buffer.OpenedAt);
        Assert.False(buffer.WouldOverflow(5000));
    }

    [Fact]
    public void Count_trigger_fires_at_max_events()
    {
        var buffer = new BatchBuffer(3, 1_000_000, TimeSpan.FromSeconds(10));
        buffer.Add(Event(), 7, T0);
        buffer.Add(Event(), 7, T0);
        Assert.Equal(FlushReason.None, buffer.Check(T0));
        buffer.Add(Event(), 7, T0);
        Assert.Equal(FlushReason.Count, buffer.Check(T0));
    }

    [Fact]
    public void Bytes_trigger_and_overflow_prediction()
    {
        // Each event counts its JSON size plus one byte for the line break it takes in NDJSON.
        var buffer = new BatchBuffer(100, 24, TimeSpan.FromSeconds(10));
        buffer.Add(Event(), 7, T0);
        buffer.Add(Event(), 7, T0);
        Assert.Equal(16, buffer.Bytes);
        Assert.False(buffer.WouldOverflow(7));
        Assert.True(buffer.WouldOverflow(8));
        Assert.Equal(FlushReason.None, buffer.Check(T0));
        buffer.Add(Event(), 7, T0);
        Assert.Equal(24, buffer.Bytes);
        Assert.Equal(FlushReason.Bytes, buffer.Check(T0));
    }

    [Fact]
    public void A_single_event_larger_than_the_limit_never_overflows_an_empty_buffer()
    {
        var buffer = new BatchBuffer(100, 10, TimeSpan.FromSeconds(10));
        Assert.False(buffer.WouldOverflow(1000));
    }

    [Fact]
    public void Linger_counts_from_the_first_event()
    {
        var buffer = new BatchBuffer(100, 1_000_000, TimeSpan.FromMilliseconds(100));
        buffer.Add(Event(), 7, T0);
        buffer.Add(Event(), 7, T0.AddMilliseconds(90));

        Assert.Equal(T0, buffer.OpenedAt);
        Assert.Equal(T0.AddMilliseconds(100), buffer.DueAt);
        Assert.Equal(FlushReason.None, buffer.Check(T0.AddMilliseconds(99)));
        Assert.Equal(FlushReason.Linger, buffer.Check(T0.AddMilliseconds(100)));
        Assert.Equal(FlushReason.Linger, buffer.Check(T0.AddSeconds(5)));
    }

    [Fact]
    public void Count_wins_over_linger()
    {
        var buffer = new BatchBuffer(1, 1_000_000, TimeSpan.FromMilliseconds(1));
        buffer.Add(Event(), 7, T0);
        Assert.Equal(FlushReason.Count, buffer.Check(T0.AddSeconds(1)));
    }

    [Fact]
    public void Drain_returns_the_events_in_order_then_resets()
    {
        var buffer = new BatchBuffer(10, 1000, TimeSpan.FromMilliseconds(100));
        var events = new[] { Event(), Event() };
        buffer.Add(events[0], 7, T0);
        buffer.Add(events[1], 7, T0.AddMilliseconds(5));

        var batch = buffer.Drain();

        Assert.Equal(events, batch.Events);
        Assert.Equal(events.Select(e => e.EventId), batch.EventIds);
        Assert.Equal(2, batch.Count);
        Assert.Equal(T0, batch.OpenedAt);
        Assert.Equal(0, buffer.Count);
        Assert.Equal(0, buffer.Bytes);
        Assert.Null(buffer.DueAt);
        Assert.Equal(FlushReason.None, buffer.Check(T0.AddHours(1)));
        var lines = Encoding.UTF8.GetString(batch.ToNdjson()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(events, lines.Select(EventJson.Parse));

        var third = Event();
        buffer.Add(third, 7, T0.AddSeconds(7));
        Assert.Equal(T0.AddSeconds(7), buffer.OpenedAt);
        Assert.Equal([third], buffer.Drain().Events);
    }

    [Fact]
    public void Draining_an_empty_buffer_gives_an_empty_batch()
    {
        var batch = new BatchBuffer(10, 1000, TimeSpan.FromMilliseconds(100)).Drain();
        Assert.Empty(batch.Events);
        Assert.Empty(batch.ToNdjson());
        Assert.Equal(0, batch.Count);
        Assert.Equal(DateTimeOffset.MinValue, batch.OpenedAt);
    }
}
