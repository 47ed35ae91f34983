using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.UnitTests.Checkpointing;

public sealed class FrontingLogFramesTests
{
    [Fact]
    public void Frames_keep_position_batch_id_time_and_events()
    {
        var at = new DateTimeOffset(2026, 12, 2, 6, 0, 0, TimeSpan.Zero);
        var events = new[] { new KeystoneEvent(Guid.NewGuid(), "user.login", at, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", "u1")), EventMetadata.Empty) };
        var a = new EventBatch(Guid.NewGuid(), 3, at, events);
        var b = new EventBatch(Guid.NewGuid(), 3, at.AddSeconds(1), []);
        var bytes = new byte[SegmentedFrontingLog.FrameSize(a) + SegmentedFrontingLog.FrameSize(b)];
        var n = SegmentedFrontingLog.Encode(bytes, 41, a);
        SegmentedFrontingLog.Encode(bytes.AsSpan(n), 42, b);

        var decoded = SegmentedFrontingLog.Decode(bytes, 3, "test");

        Assert.Equal([41L, 42], decoded.Select(d => d.Position));
        Assert.Equal([a.BatchId, b.BatchId], decoded.Select(d => d.BatchId));
        Assert.Equal([a.CreatedAt, b.CreatedAt], decoded.Select(d => d.CreatedAt));
        Assert.Equal(events[0].EventId, decoded[0].Events.Single().EventId);
        Assert.Empty(decoded[1].Events);
    }

    [Fact]
    public void A_truncated_frame_is_reported_not_skipped()
    {
        var batch = new EventBatch(Guid.NewGuid(), 0, DateTimeOffset.UnixEpoch, []);
        var bytes = new byte[SegmentedFrontingLog.FrameSize(batch)];
        SegmentedFrontingLog.Encode(bytes, 1, batch);
        var error = Assert.Throws<InvalidDataException>(() => SegmentedFrontingLog.Decode(bytes[..^1], 0, "p000/1"));
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void A_torn_tail_ends_a_file_segment_where_a_crash_can_leave_one()
    {
        var batch = new EventBatch(Guid.NewGuid(), 0, DateTimeOffset.UnixEpoch, []);
        var bytes = new byte[2 * SegmentedFrontingLog.FrameSize(batch)];
        SegmentedFrontingLog.Encode(bytes, 1, batch);
        SegmentedFrontingLog.Encode(bytes.AsSpan(SegmentedFrontingLog.FrameSize(batch)), 2, batch);
        Assert.Equal([1L], SegmentedFrontingLog.Decode(bytes[..^3], 0, "p000/1", tornTailPossible: true).Select(m => m.Position));
    }
}
