using System.Text;
using Keystone.Client.Publishing;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Publishing;

public class BatchBufferTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;

    private static byte[] Json(int n) => Encoding.UTF8.GetBytes($"{{\"n\":{n}}}");

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
        buffer.Add(Guid.NewGuid(), Json(1), T0);
        buffer.Add(Guid.NewGuid(), Json(2), T0);
        Assert.Equal(FlushReason.None, buffer.Check(T0));
        buffer.Add(Guid.NewGuid(), Json(3), T0);
        Assert.Equal(FlushReason.Count, buffer.Check(T0));
    }

    [Fact]
    public void Bytes_trigger_and_overflow_prediction()
    {
        // Each line is 7 bytes of JSON plus the newline.
        var buffer = new BatchBuffer(100, 24, TimeSpan.FromSeconds(10));
        buffer.Add(Guid.NewGuid(), Json(1), T0);
        buffer.Add(Guid.NewGuid(), Json(2), T0);
        Assert.Equal(16, buffer.Bytes);
        Assert.False(buffer.WouldOverflow(7));
        Assert.True(buffer.WouldOverflow(8));
        Assert.Equal(FlushReason.None, buffer.Check(T0));
        buffer.Add(Guid.NewGuid(), Json(3), T0);
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
        buffer.Add(Guid.NewGuid(), Json(1), T0);
        buffer.Add(Guid.NewGuid(), Json(2), T0.AddMilliseconds(90));

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
        buffer.Add(Guid.NewGuid(), Json(1), T0);
        Assert.Equal(FlushReason.Count, buffer.Check(T0.AddSeconds(1)));
    }

    [Fact]
    public void Drain_returns_ndjson_and_ids_then_resets()
    {
        var buffer = new BatchBuffer(10, 1000, TimeSpan.FromMilliseconds(100));
        var ids = new[] { Guid.NewGuid(), Guid.NewGuid() };
        buffer.Add(ids[0], Json(1), T0);
        buffer.Add(ids[1], Json(2), T0.AddMilliseconds(5));

        var batch = buffer.Drain();

        Assert.Equal("{\"n\":1}\n{\"n\":2}\n", Encoding.UTF8.GetString(batch.Ndjson));
        Assert.Equal(ids, batch.EventIds);
        Assert.Equal(2, batch.Count);
        Assert.Equal(T0, batch.OpenedAt);
        Assert.Equal(0, buffer.Count);
        Assert.Equal(0, buffer.Bytes);
        Assert.Null(buffer.DueAt);
        Assert.Empty(buffer.EventIds);
        Assert.Equal(FlushReason.None, buffer.Check(T0.AddHours(1)));

        buffer.Add(Guid.NewGuid(), Json(3), T0.AddSeconds(7));
        Assert.Equal(T0.AddSeconds(7), buffer.OpenedAt);
        Assert.Equal("{\"n\":3}\n", Encoding.UTF8.GetString(buffer.Drain().Ndjson));
    }

    [Fact]
    public void Draining_an_empty_buffer_gives_an_empty_batch()
    {
        var batch = new BatchBuffer(10, 1000, TimeSpan.FromMilliseconds(100)).Drain();
        Assert.Empty(batch.Ndjson);
        Assert.Equal(0, batch.Count);
        Assert.Equal(DateTimeOffset.MinValue, batch.OpenedAt);
    }
}
