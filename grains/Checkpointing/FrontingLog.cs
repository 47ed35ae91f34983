using System.Buffers;
using System.Buffers.Binary;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Keystone.Ingest;

namespace Keystone.Checkpointing;

/// <summary>
/// The fronting log: the pipeline's durable record of every accepted event, one log per fronting partition. Ingest
/// acknowledges a batch only after its partition's share is in the log; everything behind the log (routers, topics,
/// operators) can be rebuilt from it by replaying from the last completed checkpoint's position.
/// </summary>
public interface IFrontingLog
{
    /// <summary>Opens the one writer of a partition: finds the last position written and starts a fresh segment after it.</summary>
    Task<IFrontingLogWriter> OpenWriterAsync(int partition, CancellationToken cancellationToken = default);

    /// <summary>The messages at positions <paramref name="from"/> to <paramref name="to"/> (both included), in order,
    /// each carrying its position.</summary>
    Task<IReadOnlyList<EventBatch>> ReadAsync(int partition, long from, long to, CancellationToken cancellationToken = default);
}

public interface IFrontingLogWriter
{
    /// <summary>The last position written (0 for an empty log).</summary>
    long Last { get; }

    /// <summary>Appends the messages as positions <see cref="Last"/>+1 onwards, in one storage write, and returns them
    /// carrying their positions.</summary>
    Task<EventBatch[]> AppendAsync(IReadOnlyList<EventBatch> messages, CancellationToken cancellationToken = default);

    /// <summary>Drops the segments that hold only positions before <paramref name="position"/> (a completed checkpoint
    /// covers them). The writer knows its segments, so this costs no request unless a segment goes.</summary>
    Task SealBeforeAsync(long position, CancellationToken cancellationToken = default);
}

/// <summary>
/// The writer of a log kept as segments (files, append blobs): the lake is made of its closed segments
/// (<see cref="Keystone.Archive.SealedLogLake"/>), so a segment may be deleted only once it is in the lake.
/// </summary>
public interface ISegmentedLogWriter : IFrontingLogWriter
{
    /// <summary>Whether a segment must be archived (<see cref="MarkArchived"/>) before a checkpoint lets it go.</summary>
    bool ArchiveRequired { get; set; }

    /// <summary>Bytes in the open segment (0 when none is open).</summary>
    long OpenBytes { get; }

    /// <summary>Closes the open segment; the next append starts a new one. False when none was open. Never while an
    /// append is under way.</summary>
    bool Roll();

    /// <summary>Closed segments not archived yet, oldest first (first positions).</summary>
    IReadOnlyList<long> Unarchived { get; }

    /// <summary>A closed segment's bytes (frames as <see cref="SegmentedFrontingLog.Encode"/> writes them), to read once
    /// from the start (<see cref="SegmentedFrontingLog.ReadFramesAsync"/>); null when the segment is gone.</summary>
    Task<Stream?> OpenSegmentAsync(long first, CancellationToken cancellationToken = default);

    /// <summary>Whether a crash can leave half a frame at a segment's end.</summary>
    bool TornTailPossible { get; }

    /// <summary>Closed segments still in the log that are in the lake already; after a restart, those the writer found
    /// marked so (<see cref="MarkArchivedAsync"/>) and will not seal again.</summary>
    IReadOnlyCollection<long> Archived { get; }

    /// <summary>Records, with the segment, that it is in the lake: a checkpoint may then let it go, and a writer that
    /// opens after a restart does not seal it again.</summary>
    Task MarkArchivedAsync(long first, CancellationToken cancellationToken = default);
}

/// <summary>
/// A fronting log kept as segments per partition, each named by the first position it holds. One append per group
/// commit, holding frames of length (4 bytes), position (8), batch id (16), creation time (8 ticks) and the batch's
/// codec bytes. A writer starts a new segment when it opens and when a segment grows past <see cref="MaxSegmentBytes"/>
/// or <see cref="MaxSegmentAppends"/>. Backends say how segments are listed, read, created, appended to and deleted.
/// </summary>
public abstract class SegmentedFrontingLog : IFrontingLog
{
    /// <summary>An append blob holds at most 50,000 blocks; roll well before.</summary>
    public const int MaxSegmentAppends = 40_000;

    public const long MaxSegmentBytes = 64L * 1024 * 1024;

    /// <summary>An append block holds at most 4 MiB; a group commit larger than that is split.</summary>
    public const int MaxAppendBytes = 4 * 1024 * 1024;

    private const int FrameHeader = 4 + 8 + 16 + 8;

    /// <summary>The partition's segments, ascending by first position, and whether each is marked as in the lake.</summary>
    protected abstract Task<List<Segment>> ListSegmentsAsync(int partition, CancellationToken cancellationToken);

    /// <summary>Marks a closed segment as in the lake. The mark only spares a restarted writer sealing it again (it
    /// would write the same blobs), so it need not be flushed to disk.</summary>
    protected abstract Task MarkArchivedAsync(int partition, long first, CancellationToken cancellationToken);

    protected readonly record struct Segment(long First, bool Archived);

    /// <summary>A segment's bytes; null when it is gone.</summary>
    protected abstract Task<byte[]?> ReadSegmentAsync(int partition, long first, CancellationToken cancellationToken);

    /// <summary>A segment's bytes as a stream read from the start; null when it is gone.</summary>
    protected abstract Task<Stream?> OpenSegmentAsync(int partition, long first, CancellationToken cancellationToken);

    protected abstract Task<ISegmentAppender> CreateSegmentAsync(int partition, long first, CancellationToken cancellationToken);

    protected abstract Task DeleteSegmentAsync(int partition, long first, CancellationToken cancellationToken);

    /// <summary>Whether a crash can leave half a frame at a segment's end (a file can, an append block cannot).</summary>
    protected abstract bool TornTailPossible { get; }

    protected interface ISegmentAppender : IDisposable
    {
        /// <summary>Appends the block; the caller reuses its memory once the task completes.</summary>
        Task AppendAsync(ReadOnlyMemory<byte> block, CancellationToken cancellationToken);
    }

    public async Task<IFrontingLogWriter> OpenWriterAsync(int partition, CancellationToken cancellationToken = default)
    {
        var listed = await ListSegmentsAsync(partition, cancellationToken);
        var segments = listed.ConvertAll(s => s.First);
        long last = 0;
        // The newest segment that holds anything says where the log ends (a writer may have died right after creating one).
        for (var i = segments.Count - 1; i >= 0 && last == 0; i--)
        {
            var frames = await ReadFramesAsync(partition, segments[i], cancellationToken);
            last = frames.Count > 0 ? frames[^1].Position : 0;
            if (last == 0 && i == 0) last = segments[i] - 1;
        }
        // Past the newest segment's first position, even when that segment holds nothing (a writer died creating it, or
        // in its first append): a writer never writes into a segment it found. Below it, a failed append that moved the
        // writer past positions it may not have written would leave a segment holding positions a reader looks for in
        // the next one; into it, a segment the lake already has (sealed empty after the restart) would take events the
        // lake never gets. The one position skipped is a gap, which readers pass over.
        if (segments.Count > 0) last = Math.Max(last, segments[^1]);
        return new Writer(this, partition, last, segments, [.. listed.Where(s => s.Archived).Select(s => s.First)]);
    }

    public async Task<IReadOnlyList<EventBatch>> ReadAsync(int partition, long from, long to, CancellationToken cancellationToken = default)
    {
        var result = new List<EventBatch>();
        if (to < from) return result;
        var segments = await ListSegmentsAsync(partition, cancellationToken);
        for (var i = 0; i < segments.Count; i++)
        {
            var first = segments[i].First;
            var next = i + 1 < segments.Count ? segments[i + 1].First : long.MaxValue;
            if (next <= from || first > to) continue;
            foreach (var message in await ReadFramesAsync(partition, first, cancellationToken))
                if (message.Position >= from && message.Position <= to) result.Add(message);
        }
        return result;
    }

    private async Task<List<EventBatch>> ReadFramesAsync(int partition, long first, CancellationToken cancellationToken) =>
        await ReadSegmentAsync(partition, first, cancellationToken) is { } data
            ? Decode(data, partition, $"p{partition:D3}/{first:D16}", TornTailPossible)
            : [];

    /// <summary>Frames of one segment, in the order written. A frame cut short is an error, or, where a crash can
    /// cut one (<paramref name="tornTailPossible"/>), the end of the segment: its append was never acknowledged.</summary>
    public static List<EventBatch> Decode(byte[] data, int partition, string what, bool tornTailPossible = false)
    {
        var messages = new List<EventBatch>();
        var at = 0;
        while (at < data.Length)
        {
            var length = at + FrameHeader <= data.Length ? BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(at)) : -1;
            if (length < 0 || at + FrameHeader + length > data.Length)
            {
                if (tornTailPossible) break;
                throw new InvalidDataException($"fronting log {what} is truncated at byte {at}");
            }
            var position = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(at + 4));
            var id = new Guid(data.AsSpan(at + 12, 16));
            var created = new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(at + 28)), TimeSpan.Zero);
            var encoded = data.AsSpan(at + FrameHeader, length).ToArray();
            messages.Add(EventBatch.FromEncoded(encoded, id, partition, created).AtPosition(position));
            at += FrameHeader + length;
        }
        return messages;
    }

    /// <summary>One frame of a segment: its position, its batch's id, and when ingest made the batch.</summary>
    public readonly record struct Frame(long Position, Guid BatchId, DateTimeOffset CreatedAt);

    /// <summary>
    /// Reads a segment frame by frame, calling <paramref name="onFrame"/> with each frame's batch bytes (valid during
    /// the call only), through one pooled buffer the size of the largest frame (a group commit, at most
    /// <see cref="MaxAppendBytes"/> unless one batch was larger): a whole segment is never in memory. The rules of
    /// <see cref="Decode"/> apply to a frame cut short.
    /// </summary>
    public static async Task ReadFramesAsync(Stream segment, string what, bool tornTailPossible, FrameAction onFrame, CancellationToken cancellationToken = default)
    {
        var header = new byte[FrameHeader];
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long at = 0;
            while (true)
            {
                var got = await segment.ReadAtLeastAsync(header, FrameHeader, throwOnEndOfStream: false, cancellationToken);
                if (got == 0) return;
                var length = got == FrameHeader ? BinaryPrimitives.ReadInt32LittleEndian(header) : -1;
                if (length > buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                if (length < 0 || await segment.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken) < length)
                {
                    if (tornTailPossible) return;
                    throw new InvalidDataException($"fronting log {what} is truncated at byte {at}");
                }
                onFrame(new Frame(BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(4)), new Guid(header.AsSpan(12, 16)),
                    new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(28)), TimeSpan.Zero)), buffer.AsSpan(0, length));
                at += FrameHeader + length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public delegate void FrameAction(Frame frame, ReadOnlySpan<byte> batch);

    /// <summary>Writes one frame; returns its length.</summary>
    public static int Encode(Span<byte> destination, long position, EventBatch message)
    {
        // Written straight into the frame: a batch composed at ingest is not encoded on its own first.
        var length = message.WriteEncoded(destination[FrameHeader..]);
        BinaryPrimitives.WriteInt32LittleEndian(destination, length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[4..], position);
        message.BatchId.TryWriteBytes(destination[12..]);
        BinaryPrimitives.WriteInt64LittleEndian(destination[28..], message.CreatedAt.UtcTicks);
        return FrameHeader + length;
    }

    public static int FrameSize(EventBatch message) => FrameHeader + message.EncodedLength;

    private sealed class Writer(SegmentedFrontingLog log, int partition, long last, List<long> segments, HashSet<long> archived) : ISegmentedLogWriter
    {
        private ISegmentAppender? _segment;
        private long _segmentBytes;
        private int _segmentAppends;
        private readonly HashSet<long> _archived = archived;

        public bool ArchiveRequired { get; set; }

        public long OpenBytes => _segment is null ? 0 : _segmentBytes;

        public bool TornTailPossible => log.TornTailPossible;

        public bool Roll()
        {
            if (_segment is null) return false;
            _segment.Dispose();
            _segment = null;
            return true;
        }

        // With a segment open, the newest listed one is it.
        public IReadOnlyList<long> Unarchived =>
            [.. segments.Take(_segment is null ? segments.Count : segments.Count - 1).Where(first => !_archived.Contains(first))];

        public Task<Stream?> OpenSegmentAsync(long first, CancellationToken cancellationToken = default) =>
            log.OpenSegmentAsync(partition, first, cancellationToken);

        public IReadOnlyCollection<long> Archived => _archived;

        public async Task MarkArchivedAsync(long first, CancellationToken cancellationToken = default)
        {
            // The mark first: until the writer knows, no checkpoint deletes the segment under it.
            await log.MarkArchivedAsync(partition, first, cancellationToken);
            _archived.Add(first);
        }

        public long Last { get; private set; } = last;

        public async Task<EventBatch[]> AppendAsync(IReadOnlyList<EventBatch> messages, CancellationToken cancellationToken = default)
        {
            foreach (var m in messages)
                if (m.Segments is { Length: > 0 } || m.IsBarrier) throw new ArgumentException("the fronting log takes plain batches only", nameof(messages));
            var placed = new EventBatch[messages.Count];
            var i = 0;
            while (i < messages.Count)
            {
                // As many frames as fit one append.
                var size = 0;
                var end = i;
                while (end < messages.Count && (end == i || size + FrameSize(messages[end]) <= MaxAppendBytes))
                    size += FrameSize(messages[end++]);
                if (_segment is null || _segmentBytes + size > MaxSegmentBytes || _segmentAppends >= MaxSegmentAppends)
                {
                    _segment?.Dispose();
                    _segment = null;
                    _segment = await log.CreateSegmentAsync(partition, Last + 1, cancellationToken);
                    // Never listed twice (a writer starts past every segment it found): sealing would take the first
                    // for wholly covered and delete it live.
                    if (segments.Count == 0 || segments[^1] != Last + 1) segments.Add(Last + 1);
                    (_segmentBytes, _segmentAppends) = (0, 0);
                }
                // Pooled: every accepted batch passes through one of these, up to 4 MiB each.
                var block = ArrayPool<byte>.Shared.Rent(size);
                try
                {
                    var at = 0;
                    for (var k = i; k < end; k++) at += Encode(block.AsSpan(at), Last + 1 + (k - i), messages[k]);
                    await _segment.AppendAsync(block.AsMemory(0, size), cancellationToken);
                }
                catch
                {
                    // The write may or may not have landed: never reuse its positions (a gap is harmless, a position
                    // holding two different messages is not), and continue in a new segment. The block is not
                    // returned to the pool: a request given up on might still be reading it.
                    Last += messages.Count - i;
                    _segment.Dispose();
                    _segment = null;
                    throw;
                }
                // Answered: nothing reads the block any more.
                ArrayPool<byte>.Shared.Return(block);
                for (var k = i; k < end; k++) placed[k] = messages[k].AtPosition(Last + 1 + (k - i));
                Last += end - i;
                _segmentBytes += size;
                _segmentAppends++;
                i = end;
            }
            return placed;
        }

        public async Task SealBeforeAsync(long position, CancellationToken cancellationToken = default)
        {
            // A segment is wholly before the position when the next one starts at or before it; and, where the lake is
            // made of the log's segments, it goes once it is in the lake (the next checkpoint lets it go otherwise).
            while (segments.Count > 1 && segments[1] <= position && (!ArchiveRequired || _archived.Contains(segments[0])))
            {
                await log.DeleteSegmentAsync(partition, segments[0], cancellationToken);
                _archived.Remove(segments[0]);
                segments.RemoveAt(0);
            }
        }
    }
}

/// <summary>The fronting log on Azure Blob storage: one append blob per segment, <c>p{partition}/{first position}</c>.</summary>
public sealed class BlobFrontingLog(BlobContainerClient container) : SegmentedFrontingLog
{
    private readonly Keystone.Storage.ContainerOnce _container = new(container);

    private static string Prefix(int partition) => $"p{partition:D3}/";

    private static string SegmentName(int partition, long first) => $"{Prefix(partition)}{first:D16}";

    protected override bool TornTailPossible => false;

    private Task Ready(CancellationToken cancellationToken) => _container.ReadyAsync(cancellationToken);

    // In the segment's own metadata: one request per seal, none more at the listing, and it goes with the segment.
    private const string SealedKey = "sealed";

    protected override async Task<List<Segment>> ListSegmentsAsync(int partition, CancellationToken cancellationToken)
    {
        await Ready(cancellationToken);
        var prefix = Prefix(partition);
        var segments = new List<Segment>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, cancellationToken))
            if (long.TryParse(item.Name.AsSpan(prefix.Length), out var first))
                segments.Add(new(first, item.Metadata?.TryGetValue(SealedKey, out var value) == true && value == "true"));
        segments.Sort((a, b) => a.First.CompareTo(b.First));
        return segments;
    }

    protected override Task MarkArchivedAsync(int partition, long first, CancellationToken cancellationToken) =>
        container.GetBlobClient(SegmentName(partition, first)).SetMetadataAsync(new Dictionary<string, string> { [SealedKey] = "true" }, cancellationToken: cancellationToken);

    protected override async Task<byte[]?> ReadSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        try
        {
            return await Keystone.Storage.BlobBytes.DownloadAsync(container.GetBlobClient(SegmentName(partition, first)), cancellationToken: cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    protected override async Task<Stream?> OpenSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        try
        {
            // Disposing the content disposes the response.
            return (await container.GetBlobClient(SegmentName(partition, first)).DownloadStreamingAsync(cancellationToken: cancellationToken)).Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    protected override async Task<ISegmentAppender> CreateSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        await Ready(cancellationToken);
        var blob = container.GetAppendBlobClient(SegmentName(partition, first));
        return new Appender(blob, await Keystone.Storage.AppendOnce.CreateAsync(blob, cancellationToken));
    }

    protected override Task DeleteSegmentAsync(int partition, long first, CancellationToken cancellationToken) =>
        container.GetBlobClient(SegmentName(partition, first)).DeleteIfExistsAsync(cancellationToken: cancellationToken);

    // Once per block even when the storage client sends an append again (Keystone.Storage.AppendOnce).
    private sealed class Appender(AppendBlobClient blob, long length) : ISegmentAppender
    {
        private long _length = length;

        public async Task AppendAsync(ReadOnlyMemory<byte> block, CancellationToken cancellationToken) =>
            _length = await Keystone.Storage.AppendOnce.AppendAsync(blob, _length, block, cancellationToken);

        public void Dispose()
        {
        }
    }
}

/// <summary>
/// The fronting log in local files, <c>{directory}/p{partition}/{first position}.log</c>, each append flushed to disk
/// before it is acknowledged. For silos that share a disk (one machine: the quick start, the tests, the benchmark): it
/// keeps the acknowledgement off the storage emulator, which the stateful operators keep busy. Silos on separate
/// machines use the blob log (or Event Hubs).
/// </summary>
public sealed class FileFrontingLog(string directory, FileSystemSync? sync = null) : SegmentedFrontingLog
{
    private string PartitionDirectory(int partition) => Path.Combine(directory, $"p{partition:D3}");

    private string SegmentPath(int partition, long first) => Path.Combine(PartitionDirectory(partition), $"{first:D16}.log");

    // An empty file next to the segment says it is in the lake.
    private string SealedPath(int partition, long first) => Path.Combine(PartitionDirectory(partition), $"{first:D16}.sealed");

    protected override bool TornTailPossible => true;

    protected override Task<List<Segment>> ListSegmentsAsync(int partition, CancellationToken cancellationToken)
    {
        var path = PartitionDirectory(partition);
        var segments = new List<Segment>();
        if (!System.IO.Directory.Exists(path)) return Task.FromResult(segments);
        foreach (var file in System.IO.Directory.EnumerateFiles(path, "*.log"))
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), out var first)) segments.Add(new(first, File.Exists(SealedPath(partition, first))));
        // A mark whose segment is gone (a crash between the two deletes) is cleared.
        foreach (var mark in System.IO.Directory.EnumerateFiles(path, "*.sealed"))
            if (!File.Exists(Path.ChangeExtension(mark, ".log"))) File.Delete(mark);
        segments.Sort((a, b) => a.First.CompareTo(b.First));
        return Task.FromResult(segments);
    }

    protected override Task MarkArchivedAsync(int partition, long first, CancellationToken cancellationToken)
    {
        File.WriteAllBytes(SealedPath(partition, first), []);
        return Task.CompletedTask;
    }

    protected override async Task<byte[]?> ReadSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        try
        {
            // The writer may be appending: read what is there.
            await using var stream = new FileStream(SegmentPath(partition, first), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var data = new byte[stream.Length];
            await stream.ReadExactlyAsync(data, cancellationToken);
            return data;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    protected override Task<Stream?> OpenSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        try
        {
            return Task.FromResult<Stream?>(new FileStream(SegmentPath(partition, first), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete,
                64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan));
        }
        catch (FileNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
    }

    protected override Task<ISegmentAppender> CreateSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(PartitionDirectory(partition));
        // Create, not append. A writer starts past every segment it found, so no file of that name is expected; were
        // one there, it could only hold a frame cut short by a crash, and appended to, that half frame would sit in
        // front of acknowledged frames where every reader stops. A stale mark of being in the lake goes with it.
        File.Delete(SealedPath(partition, first));
        var stream = new FileStream(SegmentPath(partition, first), FileMode.Create, FileAccess.Write, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous);
        return Task.FromResult<ISegmentAppender>(new Appender(stream, sync));
    }

    protected override Task DeleteSegmentAsync(int partition, long first, CancellationToken cancellationToken)
    {
        File.Delete(SegmentPath(partition, first));
        // After the segment: a mark without its segment marks nothing.
        File.Delete(SealedPath(partition, first));
        return Task.CompletedTask;
    }

    private sealed class Appender(FileStream stream, FileSystemSync? sync) : ISegmentAppender
    {
        public async Task AppendAsync(ReadOnlyMemory<byte> block, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(block, cancellationToken);
            // On disk before the producer hears 202: a process kill keeps what the OS has, a power cut what is flushed.
            // With the group commit, one flush covers every partition's appends of the moment, off the thread pool.
            if (sync is null) stream.Flush(flushToDisk: true);
            else await sync.FlushAsync(stream.SafeFileHandle);
        }

        public void Dispose() => stream.Dispose();
    }
}
