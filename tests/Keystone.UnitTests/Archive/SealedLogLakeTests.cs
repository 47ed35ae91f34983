using System.IO.Compression;
using System.Text;
using Keystone.Archive;
using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Archive;

/// <summary>How a closed fronting log segment becomes the lake's hours (the upload itself is tested on Azurite).</summary>
public class SealedLogLakeTests
{
    private static readonly DateTimeOffset Arrival = new(2026, 12, 5, 10, 30, 0, TimeSpan.Zero);

    private static KeystoneEvent Play(string user, DateTimeOffset at) => Sample.PlayStarted(userId: user) with { EventId = Guid.NewGuid(), Timestamp = at };

    private static byte[] Segment(params KeystoneEvent[][] batches)
    {
        var messages = batches.Select(events => new EventBatch(Guid.NewGuid(), 3, Arrival, events)).ToList();
        var bytes = new byte[messages.Sum(SegmentedFrontingLog.FrameSize)];
        var at = 0;
        for (var i = 0; i < messages.Count; i++) at += SegmentedFrontingLog.Encode(bytes.AsSpan(at), 41 + i, messages[i]);
        return bytes;
    }

    private static List<KeystoneEvent> Read(CompressedLines lines)
    {
        lines.Seal();
        using var gzip = new GZipStream(lines.Sealed.Single().OpenRead(), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        return [.. reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(EventJson.Parse)];
    }

    [Fact]
    public async Task Events_go_to_the_hour_of_their_time_once_with_a_clock_ahead_corrected_and_replays_left_out()
    {
        var early = Play("u1", Arrival.AddMinutes(-80));
        var a = Play("u2", Arrival.AddMinutes(-25));
        var b = Play("u3", Arrival.AddMinutes(-10));
        var ahead = Play("u4", Arrival.AddHours(2));
        var replayed = Play("u5", Arrival.AddMinutes(-5)) is var r ? r with { Metadata = r.Metadata.With(SealedLogLake.ReplayedKey, "true") } : null!;
        var segment = Segment([early, a], [early, b, replayed, ahead]);

        // With a set that held another segment's ids.
        var seen = new HashSet<Guid> { a.EventId };
        var (hours, firstBatch, repeats) = await SealedLogLake.GroupAsync(new MemoryStream(segment), "p003/41", tornTailPossible: false, new ClockSkew(TimeSpan.FromMinutes(5)), seen);
        try
        {
            Assert.Equal([Arrival.AddHours(-1).AddMinutes(-30), Arrival.AddMinutes(-30)], hours.Keys);
            Assert.Equal([early], Read(hours[Arrival.AddHours(-1).AddMinutes(-30)]));
            var ten = Read(hours[Arrival.AddMinutes(-30)]);
            Assert.Equal([a, b], ten.Take(2));
            // Stamped two hours ahead of its ingest: stored under the hour it arrived, its own time kept.
            Assert.Equal(ahead.EventId, ten[2].EventId);
            Assert.Equal(Arrival, ten[2].Timestamp);
            Assert.Equal(EventJson.FormatTimestamp(ahead.Timestamp), ten[2].Metadata[ClockSkew.OriginalTimestampKey]);
            Assert.Equal(2, repeats);
            Assert.NotEqual(Guid.Empty, firstBatch);
        }
        finally
        {
            foreach (var lines in hours.Values) lines.Dispose();
        }
    }

    [Fact]
    public async Task The_same_segment_gives_the_same_names_and_bytes_so_sealing_it_again_after_a_crash_changes_nothing()
    {
        var segment = Segment([Play("u1", Arrival), Play("u2", Arrival.AddMinutes(1))]);
        async Task<byte[]> Bytes()
        {
            var (hours, _, _) = await SealedLogLake.GroupAsync(new MemoryStream(segment), "p003/41", false, new ClockSkew(TimeSpan.FromMinutes(5)), []);
            var lines = hours.Values.Single();
            lines.Seal();
            using var copy = new MemoryStream();
            lines.Sealed[0].OpenRead().CopyTo(copy);
            lines.Dispose();
            return copy.ToArray();
        }
        Assert.Equal(await Bytes(), await Bytes());
        var id = Guid.Parse("0123456789abcdef0123456789abcdef");
        Assert.Equal("archive/2026/12/05/10/p3-s0000000000000041-01234567.jsonl.gz", SealedLogLake.BlobName(Arrival, 3, 41, id));
    }

    [Fact]
    public async Task Half_a_frame_at_the_end_of_a_file_segment_is_the_end_and_elsewhere_an_error()
    {
        var segment = Segment([Play("u1", Arrival)], [Play("u2", Arrival)]);
        var cut = segment[..^3];
        var (hours, _, _) = await SealedLogLake.GroupAsync(new MemoryStream(cut), "p003/41", tornTailPossible: true, new ClockSkew(TimeSpan.FromMinutes(5)), []);
        Assert.Equal(1, hours.Values.Single().Events);
        hours.Values.Single().Dispose();
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => SealedLogLake.GroupAsync(new MemoryStream(cut), "p003/41", tornTailPossible: false, new ClockSkew(TimeSpan.FromMinutes(5)), []));
        Assert.Contains("p003/41", error.Message);
    }

    /// <summary>A segment whose first read waits until the test lets it go; says when it was first read.</summary>
    private sealed class HeldSegment(byte[] bytes) : MemoryStream(bytes)
    {
        public readonly TaskCompletionSource Released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource FirstRead = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Action? OnRead;
        public string? ThreadName;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            OnRead?.Invoke();
            ThreadName ??= Thread.CurrentThread.Name;
            FirstRead.TrySetResult();
            await Released.Task;
            return await base.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>Runs each task at once on the thread that starts it: what a seal does before its first await is done
    /// by the time the call returns.</summary>
    private sealed class InlineScheduler : TaskScheduler
    {
        protected override void QueueTask(Task task) => TryExecuteTask(task);

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => TryExecuteTask(task);

        protected override IEnumerable<Task>? GetScheduledTasks() => [];
    }

    private static ArchiveStore Unused() => new(new Azure.Storage.Blobs.BlobContainerClient(new Uri("http://127.0.0.1:9/unused")));

    [Fact]
    public async Task A_silo_reads_back_and_compresses_one_segment_at_a_time_whatever_the_partitions_that_closed_them()
    {
        using var lake = new SealedLogLake(Unused(), new InlineScheduler());
        var skew = new ClockSkew(TimeSpan.FromMinutes(5));
        var first = new HeldSegment(Segment([Play("u1", Arrival)]));
        var second = new HeldSegment(Segment([Play("u2", Arrival), Play("u3", Arrival)]));

        var grouping = lake.GroupInTurnAsync(first, "p001/1", false, skew, []);
        await first.FirstRead.Task;
        // The second partition's seal waits for the first: it has not touched its segment (GroupAsync reads at once).
        var waiting = lake.GroupInTurnAsync(second, "p002/1", false, skew, []);
        Assert.False(second.FirstRead.Task.IsCompleted);
        second.Released.SetResult();

        first.Released.SetResult();
        var (firstHours, _, _) = await grouping;
        await second.FirstRead.Task;
        var (secondHours, _, _) = await waiting;
        Assert.Equal([1, 2], new[] { firstHours, secondHours }.Select(h => h.Values.Single().Events));
        foreach (var lines in firstHours.Values.Concat(secondHours.Values)) lines.Dispose();

        // A seal that failed lets the next one go.
        var broken = new HeldSegment([1, 2, 3]);
        broken.Released.SetResult();
        await Assert.ThrowsAsync<InvalidDataException>(() => lake.GroupInTurnAsync(broken, "p003/1", false, skew, []));
        var after = new HeldSegment(Segment([Play("u4", Arrival)]));
        after.Released.SetResult();
        var (afterHours, _, _) = await lake.GroupInTurnAsync(after, "p004/1", false, skew, []);
        Assert.Equal(1, afterHours.Values.Single().Events);
        afterHours.Values.Single().Dispose();
    }

    [Fact]
    public async Task Seals_run_on_a_thread_of_their_own_at_a_lower_priority_than_the_pipeline()
    {
        using var lake = new SealedLogLake(Unused());
        var segment = new HeldSegment(Segment([Play("u1", Arrival)]));
        segment.Released.SetResult();
        var caller = Environment.CurrentManagedThreadId;
        var (threadId, nice) = (0, 0);
        segment.OnRead = () => (threadId, nice) = (Environment.CurrentManagedThreadId, ThreadNice.OfCurrentThread(elsewhere: BackgroundScheduler.Nice));

        var (hours, _, _) = await lake.GroupInTurnAsync(segment, "p001/1", false, new ClockSkew(TimeSpan.FromMinutes(5)), []);
        Assert.Equal(1, hours.Values.Single().Events);
        hours.Values.Single().Dispose();
        Assert.NotEqual(caller, threadId);
        Assert.Equal("keystone-lake-seal", segment.ThreadName);
        Assert.Equal(BackgroundScheduler.Nice, nice);
        // And what follows a seal (its uploads, the caller) is back on a normal thread.
        Assert.Equal(0, ThreadNice.OfCurrentThread(elsewhere: 0));
    }

    [Fact]
    public async Task An_hours_manifest_is_listed_once_then_kept_up_to_date_by_the_writers_own_seals()
    {
        var manifests = new HourManifests();
        var lists = 0;
        var hour = new DateTimeOffset(2026, 12, 5, 10, 0, 0, TimeSpan.Zero);
        Func<Task<IReadOnlyList<ArchiveBlob>>> List(params ArchiveBlob[] blobs) => () =>
        {
            lists++;
            return Task.FromResult<IReadOnlyList<ArchiveBlob>>(blobs);
        };
        var before = new ArchiveBlob("archive/2026/12/05/10/p3-s0000000000000001-aaaaaaaa.jsonl.gz", 10, 100);
        var first = new ArchiveBlob("archive/2026/12/05/10/p3-s0000000000000041-bbbbbbbb.jsonl.gz", 5, 50);

        // The first seal into the hour lists it (its own blob is in the listing already).
        Assert.Equal([before, first], await manifests.UpdateAsync(hour, [first], List(before, first)));
        // The next ones do not: what the writer sealed since is added, a blob written again replaces itself.
        var second = new ArchiveBlob("archive/2026/12/05/10/p3-s0000000000000090-cccccccc.jsonl.gz", 7, 70);
        Assert.Equal([before, first, second], await manifests.UpdateAsync(hour, [second], List()));
        Assert.Equal([before, first, second], await manifests.UpdateAsync(hour, [second with { Bytes = 70 }], List()));
        Assert.Equal(1, lists);

        // Another hour is listed on its own; hours far behind the newest are forgotten (and listed again if sealed into).
        await manifests.UpdateAsync(hour.AddHours(1), [], List());
        Assert.Equal(2, lists);
        await manifests.UpdateAsync(hour.AddHours(HourManifests.KeptHours + 1), [], List());
        Assert.Equal(2, manifests.Hours);
        await manifests.UpdateAsync(hour, [], List(before, first, second));
        Assert.Equal(4, lists);
    }
}
