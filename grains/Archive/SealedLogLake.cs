using System.Diagnostics.Metrics;
using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;

namespace Keystone.Archive;

/// <summary>
/// The data lake as the sealed fronting log (File and Blob logs). Every <see cref="ArchiveOptions.SealInterval"/>, or
/// once it holds <see cref="SealAtBytes"/>, a partition's open log segment is closed, and a closed segment is written to
/// the lake once: its events grouped by the hour of their time, one gzip JSON-lines blob per hour it touches,
/// <c>archive/yyyy/MM/dd/HH/p{partition}-s{first position}-{first batch}.jsonl.gz</c>, and that hour's manifest of the
/// partition rewritten. The log's segment is deleted only after that (and after a checkpoint covers it). Sealed again
/// after a crash, a segment gives the same names and the same bytes, so the lake holds each accepted message once,
/// and no event is written to storage a second time on its way through the pipeline.
/// </summary>
/// <remarks>
/// Records are turned into JSON from their bytes (<see cref="EventBatchCodec.WriteJson"/>): the events are not decoded
/// into objects again. An event stamped further ahead of its ingest time than <see cref="IngestOptions.MaxClockSkew"/>
/// is decoded and stored as the operators use it (<see cref="ClockSkew"/>), as the archive writer did. A repeat of an
/// event id within one segment (a producer's retry of a batch whose answer it lost) is left out, and so is an event
/// the archive's replay published again through ingest (<see cref="ReplayedKey"/>: it is in the lake); repeats further
/// apart stay: readers de-duplicate by event id.
/// </remarks>
public sealed class SealedLogLake(ArchiveStore store, TaskScheduler? background = null) : IDisposable
{
    // Seals read, convert and compress on a thread of their own at a low priority (BackgroundScheduler); tests pass
    // their own scheduler.
    private readonly BackgroundScheduler? _own = background is null ? new BackgroundScheduler("keystone-lake-seal") : null;

    private TaskScheduler Background => background ?? _own!;

    public void Dispose() => _own?.Dispose();

    private long _segments, _events, _bytes, _failures, _alreadySealed;

    // One segment read back and compressed at a time in this silo: the partitions fill, and tick, together, and each
    // seal holds its segment's compressed lines until they are uploaded.
    private readonly SemaphoreSlim _grouping = new(1, 1);

    /// <summary>Segments sealed into the lake since the silo started, the events and compressed bytes written, seals
    /// that failed (their segments stay in the log and are tried again), and segments the partitions' writers found in
    /// the log already marked as in the lake as they opened (after a restart: not sealed again).</summary>
    public (long Segments, long Events, long Bytes, long Failures, long AlreadySealed) Sealed =>
        (Interlocked.Read(ref _segments), Interlocked.Read(ref _events), Interlocked.Read(ref _bytes), Interlocked.Read(ref _failures),
         Interlocked.Read(ref _alreadySealed));

    /// <summary>Exports <see cref="Sealed"/> next to the storage requests: <c>keystone_lake_sealed_segments_total</c>,
    /// <c>keystone_lake_sealed_events_total</c>, <c>keystone_lake_sealed_bytes_total</c>, <c>keystone_lake_seal_failures_total</c>,
    /// <c>keystone_lake_already_sealed_segments_total</c>.</summary>
    public void Export(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(Keystone.Storage.StorageRequests.MeterName);
        meter.CreateObservableCounter("keystone.lake.sealed_segments", () => Sealed.Segments, "{segment}", "Fronting log segments written to the lake.");
        meter.CreateObservableCounter("keystone.lake.sealed_events", () => Sealed.Events, "{event}", "Events written to the lake from sealed log segments.");
        meter.CreateObservableCounter("keystone.lake.sealed_bytes", () => Sealed.Bytes, "By", "Compressed bytes written to the lake from sealed log segments.");
        meter.CreateObservableCounter("keystone.lake.seal_failures", () => Sealed.Failures, "{failure}", "Seals that failed; their segments stay in the log and are tried again.");
        meter.CreateObservableCounter("keystone.lake.already_sealed_segments", () => Sealed.AlreadySealed, "{segment}",
            "Log segments a partition's writer found already in the lake as it opened, and did not seal again.");
    }

    public void CountFailure() => Interlocked.Increment(ref _failures);

    public void CountAlreadySealed(int segments) => Interlocked.Add(ref _alreadySealed, segments);

    /// <summary>A segment is closed once it holds this much, whatever its age: what a seal reads back stays small.</summary>
    public const long SealAtBytes = 8L * 1024 * 1024;

    /// <summary>Marks an event the archive's replay publishes through ingest: it is in the lake already, and its
    /// second acceptance is not sealed into it again. Ingest refuses it from anyone else.</summary>
    public const string ReplayedKey = Schemas.ValidationLimits.LakeReplayKey;

    public static string BlobName(DateTimeOffset hour, int partition, long first, Guid firstBatch) =>
        $"{ArchiveStore.HourPrefix(hour)}p{partition}-s{first:D16}-{firstBatch.ToString("N")[..8]}.jsonl.gz";

    /// <summary>
    /// The events of a closed segment, read frame by frame, compressed by hour. <paramref name="seen"/> is cleared and
    /// used for the segment's event ids (the caller keeps one set, so that a seal does not grow a new one). The caller
    /// disposes the lines.
    /// </summary>
    public static async Task<(SortedDictionary<DateTimeOffset, CompressedLines> Hours, Guid FirstBatch, int Repeats)> GroupAsync(
        Stream segment, string what, bool tornTailPossible, ClockSkew clockSkew, HashSet<Guid> seen, CancellationToken cancellationToken = default)
    {
        var hours = new SortedDictionary<DateTimeOffset, CompressedLines>();
        seen.Clear();
        var firstBatch = Guid.Empty;
        var repeats = 0;
        try
        {
            await SegmentedFrontingLog.ReadFramesAsync(segment, what, tornTailPossible, (frame, batch) =>
            {
                if (firstBatch == Guid.Empty) firstBatch = frame.BatchId;
                repeats += AddFrame(hours, frame, batch, clockSkew, seen);
            }, cancellationToken);
            seen.Clear();
            return (hours, firstBatch, repeats);
        }
        catch
        {
            foreach (var lines in hours.Values) lines.Dispose();
            throw;
        }
    }

    // Returns the events left out.
    private static int AddFrame(SortedDictionary<DateTimeOffset, CompressedLines> hours, SegmentedFrontingLog.Frame frame, ReadOnlySpan<byte> batch,
        ClockSkew clockSkew, HashSet<Guid> seen)
    {
        var left = 0;
        var start = EventBatchCodec.ReadHeader(batch, out var records);
        for (var n = 0; n < records; n++)
        {
            var record = batch.Slice(start, EventBatchCodec.RecordLength(batch, start));
            start += record.Length;
            var (id, timestamp) = EventBatchCodec.ReadKey(record);
            if (!seen.Add(id) || EventBatchCodec.HasMetadata(record, "replayed_from_lake"u8))
            {
                left++;
                continue;
            }
            if (frame.CreatedAt == default || clockSkew.SkewOf(timestamp, frame.CreatedAt) is null)
                Lines(hours, ArchiveStore.HourOf(timestamp)).AddRecord(record);
            else
            {
                var corrected = clockSkew.Correct(EventBatchCodec.DecodeRecord(record), frame.CreatedAt);
                Lines(hours, ArchiveStore.HourOf(corrected.Timestamp)).Add(corrected);
            }
        }
        return left;
    }

    private static CompressedLines Lines(SortedDictionary<DateTimeOffset, CompressedLines> hours, DateTimeOffset hour)
    {
        // One gzip member per hour: the blob is uploaded whole, not appended in blocks.
        if (!hours.TryGetValue(hour, out var lines)) hours[hour] = lines = new CompressedLines(int.MaxValue);
        return lines;
    }

    /// <summary><see cref="GroupAsync"/> on the background thread, after the seal of this silo that is grouping (if any) is done.</summary>
    public async Task<(SortedDictionary<DateTimeOffset, CompressedLines> Hours, Guid FirstBatch, int Repeats)> GroupInTurnAsync(
        Stream segment, string what, bool tornTailPossible, ClockSkew clockSkew, HashSet<Guid> seen, CancellationToken cancellationToken = default)
    {
        await _grouping.WaitAsync(cancellationToken);
        try
        {
            // The caller goes on (uploads the lines) on the pool.
            return await BackgroundScheduler.RunAsync(Background, () => GroupAsync(segment, what, tornTailPossible, clockSkew, seen, cancellationToken), cancellationToken);
        }
        finally
        {
            _grouping.Release();
        }
    }

    /// <summary>Writes a closed segment to the lake and rewrites the manifests of the hours it touched (from
    /// <paramref name="manifests"/>: an hour is listed once per writer); returns the blobs.</summary>
    public async Task<IReadOnlyList<ArchiveBlob>> SealAsync(int partition, long first, Stream segment, bool tornTailPossible, ClockSkew clockSkew,
        HashSet<Guid> seen, HourManifests manifests, CancellationToken cancellationToken = default)
    {
        var (hours, firstBatch, _) = await GroupInTurnAsync(segment, $"p{partition:D3}/{first:D16}", tornTailPossible, clockSkew, seen, cancellationToken);
        try
        {
            var written = new List<ArchiveBlob>(hours.Count);
            foreach (var (hour, lines) in hours)
            {
                lines.Seal();
                var chunk = lines.Sealed[0];
                var name = BlobName(hour, partition, first, firstBatch);
                await store.UploadAsync(name, chunk, cancellationToken);
                written.Add(new ArchiveBlob(name, chunk.Events, chunk.Length));
            }
            foreach (var hour in hours.Keys)
            {
                var prefix = ArchiveStore.HourPrefix(hour);
                var blobs = await manifests.UpdateAsync(hour, written.Where(b => b.Name.StartsWith(prefix, StringComparison.Ordinal)),
                    async () => [.. (await store.ListPartitionAsync(prefix, partition, cancellationToken)).Select(b => b.Blob)]);
                await store.WriteManifestAsync($"{prefix}manifest-p{partition}.json", blobs, cancellationToken);
            }
            Interlocked.Increment(ref _segments);
            Interlocked.Add(ref _events, written.Sum(b => b.Events));
            Interlocked.Add(ref _bytes, written.Sum(b => b.Bytes));
            return written;
        }
        finally
        {
            foreach (var lines in hours.Values) lines.Dispose();
        }
    }
}

/// <summary>
/// One partition writer's blobs per hour of the lake, for the hours' manifests: an hour is listed the first time this
/// writer seals into it, and kept up to date by its own seals after that, so that a seal every minute does not list
/// the hour again (one writer per partition writes that partition's blobs). Hours more than
/// <see cref="KeptHours"/> older than the newest one touched are forgotten (a seal into one lists it again).
/// </summary>
public sealed class HourManifests
{
    public const int KeptHours = 6;

    private readonly SortedDictionary<DateTimeOffset, SortedDictionary<string, ArchiveBlob>> _hours = [];

    /// <summary>The hour's blobs with <paramref name="written"/> added (or replacing blobs of the same name), in name
    /// order; <paramref name="list"/> gives the hour's blobs when it is not known yet.</summary>
    public async Task<IReadOnlyList<ArchiveBlob>> UpdateAsync(DateTimeOffset hour, IEnumerable<ArchiveBlob> written, Func<Task<IReadOnlyList<ArchiveBlob>>> list)
    {
        if (!_hours.TryGetValue(hour, out var blobs))
        {
            blobs = new SortedDictionary<string, ArchiveBlob>(StringComparer.Ordinal);
            foreach (var blob in await list()) blobs[blob.Name] = blob;
            _hours[hour] = blobs;
            while (_hours.Count > 0 && _hours.Keys.First() < _hours.Keys.Last().AddHours(-KeptHours)) _hours.Remove(_hours.Keys.First());
        }
        foreach (var blob in written) blobs[blob.Name] = blob;
        return [.. blobs.Values];
    }

    public int Hours => _hours.Count;
}
