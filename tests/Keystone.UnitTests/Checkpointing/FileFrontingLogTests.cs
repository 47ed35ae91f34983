using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.UnitTests.Checkpointing;

/// <summary>The segmented log's writer and reader, on the file backend in a temporary folder.</summary>
public sealed class FileFrontingLogTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "keystone-log-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static EventBatch Message(string user) => new(Guid.NewGuid(), 2, DateTimeOffset.UnixEpoch,
        [new KeystoneEvent(Guid.NewGuid(), "user.login", DateTimeOffset.UnixEpoch, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", user)), EventMetadata.Empty)]);

    [Fact]
    public async Task Appends_get_dense_positions_that_survive_a_reopen()
    {
        var log = new FileFrontingLog(_directory);
        var writer = await log.OpenWriterAsync(2);
        var first = await writer.AppendAsync([Message("a"), Message("b")]);
        var second = await writer.AppendAsync([Message("c")]);
        Assert.Equal([1L, 2], first.Select(m => m.Position));
        Assert.Equal([3L], second.Select(m => m.Position));

        // A new writer (after a crash) continues after the last position, in a new segment.
        var again = await new FileFrontingLog(_directory).OpenWriterAsync(2);
        Assert.Equal(3, again.Last);
        Assert.Equal([4L], (await again.AppendAsync([Message("d")])).Select(m => m.Position));

        var read = await log.ReadAsync(2, 2, 4);
        Assert.Equal([2L, 3, 4], read.Select(m => m.Position));
        Assert.Equal(second[0].BatchId, read[1].BatchId);
        Assert.Equal("c", read[1].Events.Single().Payload.GetString("user_id"));
        Assert.Empty(await log.ReadAsync(1, 1, 10));
    }

    [Fact]
    public async Task Sealing_drops_only_segments_wholly_before_the_position()
    {
        var log = new FileFrontingLog(_directory);
        await (await log.OpenWriterAsync(2)).AppendAsync([Message("a"), Message("b")]);
        var writer = await log.OpenWriterAsync(2);
        await writer.AppendAsync([Message("c")]);
        var segments = () => Directory.GetFiles(Path.Combine(_directory, "p002"), "*.log").Length;
        Assert.Equal(2, segments());

        await writer.SealBeforeAsync(2);
        Assert.Equal(2, segments());
        await writer.SealBeforeAsync(3);
        Assert.Equal(1, segments());
        Assert.Equal([3L], (await log.ReadAsync(2, 1, 3)).Select(m => m.Position));
    }

    [Fact]
    public async Task Half_a_frame_left_by_a_crash_is_not_read_and_its_position_is_written_again()
    {
        var log = new FileFrontingLog(_directory);
        var writer = await log.OpenWriterAsync(2);
        await writer.AppendAsync([Message("a"), Message("b")]);
        var segment = Directory.GetFiles(Path.Combine(_directory, "p002"), "*.log").Single();
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            file.SetLength(file.Length - 5);

        var again = await new FileFrontingLog(_directory).OpenWriterAsync(2);
        Assert.Equal(1, again.Last);
        await again.AppendAsync([Message("c")]);
        var read = await log.ReadAsync(2, 1, 10);
        Assert.Equal([1L, 2], read.Select(m => m.Position));
        Assert.Equal("c", read[1].Events.Single().Payload.GetString("user_id"));
    }

    [Fact]
    public async Task Half_of_a_new_segments_first_frame_left_by_a_crash_is_replaced_not_written_after()
    {
        // Positions 1 and 2, then the segment closed (every minute or 8 MiB where the lake is the log) and the kill
        // in the next segment's first append: it holds half a frame and nothing else.
        var log = new FileFrontingLog(_directory);
        var writer = (ISegmentedLogWriter)await log.OpenWriterAsync(2);
        await writer.AppendAsync([Message("a"), Message("b")]);
        writer.Roll();
        await writer.AppendAsync([Message("c")]);
        var second = Path.Combine(_directory, "p002", $"{3:D16}.log");
        await using (var file = new FileStream(second, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            file.SetLength(file.Length - 5);

        // The new writer starts past that segment (position 3 is a gap) and never writes behind the half frame.
        var again = await new FileFrontingLog(_directory).OpenWriterAsync(2);
        Assert.Equal(3, again.Last);
        await again.AppendAsync([Message("d"), Message("e")]);
        var read = await log.ReadAsync(2, 1, 10);
        Assert.Equal([1L, 2, 4, 5], read.Select(m => m.Position));
        Assert.Equal(["a", "b", "d", "e"], read.Select(m => m.Events.Single().Payload.GetString("user_id")));
    }

    [Fact]
    public async Task A_new_segments_file_with_half_a_frame_is_replaced_not_written_after()
    {
        // Should a writer ever create a segment whose file a crash left with half a frame, the frames it appends are
        // read, not stopped at that half frame.
        Directory.CreateDirectory(Path.Combine(_directory, "p002"));
        var log = new FileFrontingLog(_directory);
        var writer = await log.OpenWriterAsync(2);
        var frame = new byte[SegmentedFrontingLog.FrameSize(Message("x"))];
        SegmentedFrontingLog.Encode(frame, 1, Message("x"));
        File.WriteAllBytes(Path.Combine(_directory, "p002", $"{1:D16}.log"), frame[..^5]);
        await writer.AppendAsync([Message("a")]);
        Assert.Equal(["a"], (await log.ReadAsync(2, 1, 10)).Select(m => m.Events.Single().Payload.GetString("user_id")));
    }

    // Positions 1 and 2 written; then a writer that died right after starting segment `first` left it empty, and a
    // new writer opens the log.
    private async Task<(FileFrontingLog Log, IFrontingLogWriter Writer)> ReopenedAfterEmptySegment(long first)
    {
        var log = new FileFrontingLog(_directory);
        await (await log.OpenWriterAsync(2)).AppendAsync([Message("a"), Message("b")]);
        File.WriteAllBytes(Path.Combine(_directory, "p002", $"{first:D16}.log"), []);
        return (log, await new FileFrontingLog(_directory).OpenWriterAsync(2));
    }

    [Fact]
    public async Task A_segment_left_empty_by_a_crash_is_not_written_into_and_sealing_keeps_what_is_live()
    {
        var (log, writer) = await ReopenedAfterEmptySegment(3);
        Assert.Equal(3, writer.Last);
        Assert.Equal([4L, 5], (await writer.AppendAsync([Message("c"), Message("d")])).Select(m => m.Position));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(_directory, "p002"), "*.log").Length);
        // Positions 4 and 5 are not covered yet: the segments wholly before 5 go (the first, and the empty one).
        await writer.SealBeforeAsync(5);
        Assert.Equal([4L, 5], (await log.ReadAsync(2, 1, 10)).Select(m => m.Position));
        Assert.Equal(["c", "d"], (await log.ReadAsync(2, 4, 5)).Select(m => m.Events.Single().Payload.GetString("user_id")));
    }

    [Fact]
    public async Task Positions_skipped_by_a_failed_append_are_not_written_again_below_a_newer_segment()
    {
        // An append of positions 3 and 4 failed (the writer moved past them), the writer started a segment at 5 and died.
        var (log, writer) = await ReopenedAfterEmptySegment(5);
        Assert.Equal(5, writer.Last);
        var placed = await writer.AppendAsync([Message("c"), Message("d"), Message("e")]);
        Assert.Equal([6L, 7, 8], placed.Select(m => m.Position));
        // Every message is found where a reader looks for it, by its position.
        foreach (var message in placed)
            Assert.Equal(message.BatchId, Assert.Single(await log.ReadAsync(2, message.Position, message.Position)).BatchId);
    }

    [Fact]
    public async Task Where_the_lake_is_the_log_a_segment_goes_only_once_it_is_closed_and_archived()
    {
        var log = new FileFrontingLog(_directory);
        var writer = (ISegmentedLogWriter)await log.OpenWriterAsync(2);
        writer.ArchiveRequired = true;
        await writer.AppendAsync([Message("a"), Message("b")]);
        // The open segment is not the lake's yet.
        Assert.Empty(writer.Unarchived);
        Assert.True(writer.OpenBytes > 0);

        Assert.True(writer.Roll());
        Assert.False(writer.Roll());
        Assert.Equal(0, writer.OpenBytes);
        Assert.Equal([1L], writer.Unarchived);
        await writer.AppendAsync([Message("c")]);
        Assert.Equal([1L], writer.Unarchived);
        var positions = new List<long>();
        await using (var segment = (await writer.OpenSegmentAsync(1))!)
            await SegmentedFrontingLog.ReadFramesAsync(segment, "p002/1", writer.TornTailPossible, (frame, batch) =>
            {
                positions.Add(frame.Position);
                Assert.Single(EventBatchCodec.Decode(batch));
            });
        Assert.Equal([1L, 2], positions);

        // Covered by a checkpoint but not in the lake: kept.
        var segments = () => Directory.GetFiles(Path.Combine(_directory, "p002"), "*.log").Length;
        await writer.SealBeforeAsync(3);
        Assert.Equal(2, segments());
        await writer.MarkArchivedAsync(1);
        Assert.Empty(writer.Unarchived);
        await writer.SealBeforeAsync(3);
        Assert.Equal(1, segments());
        // The segment's mark went with it.
        Assert.Empty(Directory.GetFiles(Path.Combine(_directory, "p002"), "*.sealed"));

        // A new writer (a restart) finds every segment closed; those not in the lake go to it.
        var reopened = (ISegmentedLogWriter)await new FileFrontingLog(_directory).OpenWriterAsync(2);
        Assert.Equal([3L], reopened.Unarchived);
        Assert.Empty(reopened.Archived);
    }

    [Fact]
    public async Task A_restarted_writer_does_not_seal_again_what_is_in_the_lake_and_never_writes_into_it()
    {
        var log = new FileFrontingLog(_directory);
        var writer = (ISegmentedLogWriter)await log.OpenWriterAsync(2);
        writer.ArchiveRequired = true;
        await writer.AppendAsync([Message("a"), Message("b")]);
        writer.Roll();
        await writer.MarkArchivedAsync(1);
        await writer.AppendAsync([Message("c")]);

        // A kill with segment 3 open: after the restart it is closed, and only it goes to the lake.
        var second = (ISegmentedLogWriter)await new FileFrontingLog(_directory).OpenWriterAsync(2);
        second.ArchiveRequired = true;
        Assert.Equal([3L], second.Unarchived);
        Assert.Equal([1L], second.Archived);
        await second.MarkArchivedAsync(3);

        // Killed again right after creating segment 4, which holds nothing: the next writer seals it (empty), and the
        // events it is given next go to a segment the lake does not have yet.
        File.WriteAllBytes(Path.Combine(_directory, "p002", $"{4:D16}.log"), []);
        var third = (ISegmentedLogWriter)await new FileFrontingLog(_directory).OpenWriterAsync(2);
        third.ArchiveRequired = true;
        Assert.Equal([4L], third.Unarchived);
        Assert.Equal([1L, 3], third.Archived.Order());
        await third.MarkArchivedAsync(4);
        var placed = await third.AppendAsync([Message("d")]);
        Assert.True(third.Roll());
        Assert.Equal([placed[0].Position], third.Unarchived);

        // Covered and in the lake: the three go, with their marks; the unsealed one stays.
        await third.SealBeforeAsync(placed[0].Position + 1);
        Assert.Equal([$"{placed[0].Position:D16}.log"], Directory.GetFiles(Path.Combine(_directory, "p002")).Select(Path.GetFileName));
    }
}
