using Keystone.Events;

namespace Keystone.Ingest;

/// <summary>One refused event: its position in the request, its <c>event_id</c> as sent (if any), the field and the reason.</summary>
[GenerateSerializer, Immutable]
public sealed record EventRejection(
    [property: Id(0)] int Index,
    [property: Id(1)] string? EventId,
    [property: Id(2)] string Field,
    [property: Id(3)] string Error);

public enum BodyCompression : byte
{
    None = 0,

    /// <summary>K4os LZ4 "pickle" framing, as the SDK sends it.</summary>
    Lz4 = 1,
}

/// <summary>A batch as it crosses from a producer (SDK, REST gateway, CLI) to the cluster: the body as sent (the SDK's
/// binary batch, LZ4-compressed, or JSON), untouched. The body may be a pooled buffer of the sender's (the SDK's is):
/// the cluster reads it before it answers and keeps no reference to it.</summary>
[GenerateSerializer, Immutable]
public sealed record IngestRequest(
    [property: Id(0)] ReadOnlyMemory<byte> Body,
    [property: Id(1)] BodyFormat Format,
    [property: Id(2)] BodyCompression Compression,
    [property: Id(3)] string Origin);

/// <summary>What ingest did with a batch. <see cref="BodyError"/> set means the body was unusable and nothing was accepted.</summary>
[GenerateSerializer, Immutable]
public sealed record IngestResult(
    [property: Id(0)] int Accepted,
    [property: Id(1)] int Duplicates,
    [property: Id(2)] IReadOnlyList<EventRejection> Rejected,
    [property: Id(3)] string? BodyError = null)
{
    public static IngestResult Malformed(string error) => new(0, 0, [], error);
}

/// <summary>
/// The front door of the pipeline. A stateless worker: any silo takes a batch, validates it, and appends it to
/// the fronting stream, one stream message per partition.
/// </summary>
public interface IIngestGrain : IGrainWithIntegerKey
{
    Task<IngestResult> Ingest(IngestRequest request);
}

/// <summary>
/// The unit every stream carries: a batch, never a single event (one event per message tops out near 12k/s).
/// A batch is made of segments, each named by a deterministic id: a consumer that has already applied a segment
/// skips it, so a redelivered message (durable queues do redeliver) is not counted twice, however the messages
/// were grouped the first time.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class EventBatch
{
    // On the wire a batch is one byte array (see EventBatchCodec): a hop copies it instead of re-encoding events.
    [Id(0)] private readonly Guid _batchId;
    [Id(1)] private readonly int _partition;
    [Id(2)] private readonly DateTimeOffset _createdAt;
    [Id(3)] private readonly BatchSegment[]? _segments;
    [Id(4)] private readonly int _count;

    // Serialised through this property, so that a batch composed in memory is encoded only if it leaves the process:
    // inside a silo, batches travel by reference (the Local stream provider) and most are never encoded at all.
    [Id(5)] internal byte[] EncodedForWire { get => EnsureEncoded(); set => _encoded = value; }
    [NonSerialized] private byte[]? _encoded;

    // A composed batch before it is encoded: its items, none of which refers to a batch that is itself pending.
    [NonSerialized] private readonly BatchItem[]? _pending;
    [NonSerialized] private readonly int _pendingSize;

    // A fronting message's place in its partition's fronting log (1, 2, …; 0 where there is no log).
    [Id(6)] private readonly long _position;

    // A checkpoint barrier (see Keystone.Checkpointing): no events, the checkpoint's number; 0 on data.
    [Id(7)] private readonly long _barrier;

    // Decoded on first use and shared: the same instance may reach several consumers of one silo.
    [NonSerialized] private KeystoneEvent[]? _events;
    [NonSerialized] private (int Start, int Length)[]? _ranges;

    private EventBatch(Guid batchId, int partition, DateTimeOffset createdAt, BatchSegment[]? segments, int count, byte[]? encoded, KeystoneEvent[]? events,
        long position = 0, long barrier = 0, BatchItem[]? pending = null, int pendingSize = 0)
    {
        _batchId = batchId;
        _partition = partition;
        _createdAt = createdAt;
        _segments = segments;
        _count = count;
        _encoded = encoded;
        _events = events;
        _position = position;
        _barrier = barrier;
        _pending = pending;
        _pendingSize = pendingSize;
    }

    /// <summary>The same batch at <paramref name="position"/> of its partition's fronting log (shares the bytes).</summary>
    public EventBatch AtPosition(long position)
    {
        var batch = new EventBatch(_batchId, _partition, _createdAt, _segments, _count, Volatile.Read(ref _encoded), Volatile.Read(ref _events), position, _barrier, _pending, _pendingSize);
        batch._ranges = Volatile.Read(ref _ranges);
        return batch;
    }

    /// <summary>Barrier <paramref name="checkpoint"/> of one partition: a message with no events that follows, in its
    /// stream, everything the router had routed from fronting positions up to <paramref name="position"/>.</summary>
    public static EventBatch CheckpointBarrier(long checkpoint, int partition, long position, DateTimeOffset createdAt) =>
        new(Guid.Empty, partition, createdAt, [], 0, s_emptyBatch, [], position, checkpoint);

    private static readonly byte[] s_emptyBatch = EventBatchCodec.Encode([]);

    /// <summary>Position in the fronting log, for fronting messages that went through it; 0 otherwise.</summary>
    public long Position => _position;

    /// <summary>The checkpoint number when this message is a barrier; 0 for data.</summary>
    public long Barrier => _barrier;

    public bool IsBarrier => _barrier != 0;

    /// <summary>Wraps bytes in the codec's form (an SDK batch, say); throws <see cref="InvalidDataException"/> if they are not.</summary>
    public static EventBatch FromEncoded(byte[] encoded, Guid batchId = default, int partition = 0, DateTimeOffset createdAt = default)
    {
        EventBatchCodec.ReadHeader(encoded, out var count);
        var batch = new EventBatch(batchId, partition, createdAt, null, count, encoded, null);
        batch._ranges = EventBatchCodec.RecordRanges(encoded);
        return batch;
    }

    /// <summary>
    /// Builds a batch from items that are either events to encode or records of another batch to copy as they are —
    /// how routers and ingest pass on events they did not change without re-encoding them.
    /// </summary>
    /// <remarks>The bytes are written when first asked for (<see cref="Encoded"/>, or serialisation when the batch leaves
    /// the silo); until then the batch holds its events and where each record would be copied from.</remarks>
    public static EventBatch Compose(Guid batchId, int partition, DateTimeOffset createdAt, IReadOnlyList<BatchItem> items, BatchSegment[]? segments = null) =>
        ComposeOwned(batchId, partition, createdAt, [.. items], segments);

    /// <summary>
    /// <see cref="Compose"/> that takes ownership of <paramref name="items"/> instead of copying it: the caller must
    /// not use the array afterwards. The router and ingest build each message's items once and hand them over, where
    /// copying them again was a tenth of the bytes the silo allocated per event.
    /// </summary>
    public static EventBatch ComposeOwned(Guid batchId, int partition, DateTimeOffset createdAt, BatchItem[] items, BatchSegment[]? segments = null)
    {
        var events = new KeystoneEvent[items.Length];
        var size = EventBatchCodec.HeaderSize(items.Length);
        for (var i = 0; i < items.Length; i++)
        {
            ref var item = ref items[i];
            // An item of a batch that is itself pending refers to that batch's own source: one level, however many hops.
            if (item.Source is { _pending: { } upstream }) item = upstream[item.SourceIndex] with { Event = item.Event };
            events[i] = item.Event;
            size += item.Size;
        }
        return new EventBatch(batchId, partition, createdAt, segments, items.Length, null, events, pending: items, pendingSize: size);
    }

    private byte[] EnsureEncoded()
    {
        if (Volatile.Read(ref _encoded) is { } done) return done;
        var encoded = new byte[_pendingSize];
        ComposeInto(encoded);
        // Several consumers may ask at once; the first result is kept (they are equal).
        return Interlocked.CompareExchange(ref _encoded, encoded, null) ?? encoded;
    }

    private void ComposeInto(Span<byte> destination)
    {
        var items = _pending!;
        var p = EventBatchCodec.WriteHeader(destination, items.Length);
        foreach (var item in items)
        {
            if (item.Source is { } source)
            {
                var (start, length) = source.RecordRanges[item.SourceIndex];
                source.EnsureEncoded().AsSpan(start, length).CopyTo(destination[p..]);
                p += length;
            }
            else
            {
                p += EventBatchCodec.WriteRecord(destination[p..], item.Event);
            }
        }
        if (p != _pendingSize) throw new InvalidOperationException($"composed batch is {p} bytes, expected {_pendingSize}");
    }

    /// <summary>Writes the encoded form into <paramref name="destination"/> (at least <see cref="EncodedLength"/> bytes)
    /// and returns its length. A composed batch is written from its sources without keeping an encoded copy.</summary>
    public int WriteEncoded(Span<byte> destination)
    {
        if (Volatile.Read(ref _encoded) is { } done)
        {
            done.CopyTo(destination);
            return done.Length;
        }
        ComposeInto(destination[.._pendingSize]);
        return _pendingSize;
    }

    /// <summary>The bytes record <paramref name="index"/> takes, without encoding a pending batch.</summary>
    internal int RecordSize(int index) => _pending is { } pending ? pending[index].Size : RecordRanges[index].Length;

    /// <summary>Where each event's record lies in the encoded form.</summary>
    public (int Start, int Length)[] RecordRanges
    {
        get
        {
            var ranges = Volatile.Read(ref _ranges);
            if (ranges is not null) return ranges;
            Interlocked.CompareExchange(ref _ranges, EventBatchCodec.RecordRanges(EnsureEncoded()), null);
            return _ranges!;
        }
    }

    public EventBatch(Guid batchId, int partition, DateTimeOffset createdAt, KeystoneEvent[] events, BatchSegment[]? segments = null)
    {
        _batchId = batchId;
        _partition = partition;
        _createdAt = createdAt;
        _segments = segments;
        _count = events.Length;
        _events = events;
        _encoded = EventBatchCodec.Encode(events);
    }

    public Guid BatchId => _batchId;
    public int Partition => _partition;
    /// <summary>When ingest accepted the events (routers pass it on unchanged): their arrival, which consumers judge
    /// event times against. Other producers of stream messages put their own clock here.</summary>
    public DateTimeOffset CreatedAt => _createdAt;
    public BatchSegment[]? Segments => _segments;
    public int Count => _count;

    /// <summary>Whether the wire form exists yet: a composed batch is encoded when first asked for it.</summary>
    public bool IsEncoded => Volatile.Read(ref _encoded) is not null;

    /// <summary>Size of the batch on the wire, in bytes.</summary>
    public int EncodedLength => Volatile.Read(ref _encoded)?.Length ?? _pendingSize;

    /// <summary>The wire form (the codec's bytes), read-only.</summary>
    public ReadOnlySpan<byte> Encoded => EnsureEncoded();

    /// <summary>A copy of the wire form (the codec's bytes).</summary>
    public byte[] CopyEncoded() => (byte[])EnsureEncoded().Clone();

    public KeystoneEvent[] Events
    {
        get
        {
            var events = Volatile.Read(ref _events);
            if (events is not null) return events;
            events = EventBatchCodec.Decode(EnsureEncoded());
            Interlocked.CompareExchange(ref _events, events, null);
            return _events!;
        }
    }

    /// <summary>The events when they are already decoded (a batch passed by reference within a silo); null otherwise.</summary>
    public KeystoneEvent[]? DecodedEvents => Volatile.Read(ref _events);

    /// <summary>Each event's UTC time in ticks, without decoding the events when they are not decoded yet.</summary>
    public long[] UtcTicks()
    {
        var events = Volatile.Read(ref _events);
        if (events is null) return EventBatchCodec.ReadUtcTicks(EnsureEncoded());
        var ticks = new long[events.Length];
        for (var i = 0; i < events.Length; i++) ticks[i] = events[i].Timestamp.UtcTicks;
        return ticks;
    }

    /// <summary>The events from index <paramref name="from"/> on, decoding only those when the batch is not decoded yet.</summary>
    public KeystoneEvent[] EventsFrom(int from)
    {
        var events = Volatile.Read(ref _events);
        if (events is not null) return events[Math.Clamp(from, 0, events.Length)..];
        return from <= 0 ? Events : EventBatchCodec.Decode(EnsureEncoded(), from);
    }

    /// <summary>The segments as (id, first index, count), without decoding anything.</summary>
    public IEnumerable<(Guid Id, int Start, int Count)> SegmentRanges()
    {
        if (_barrier != 0) yield break;
        if (_segments is null || _segments.Length == 0)
        {
            yield return (_batchId, 0, _count);
            yield break;
        }
        var start = 0;
        foreach (var segment in _segments)
        {
            yield return (segment.Id, start, segment.End - start);
            start = segment.End;
        }
    }

    /// <summary>The segments and their events; a batch without segment marks is one segment named by <see cref="BatchId"/>.</summary>
    public IEnumerable<(Guid Id, ArraySegment<KeystoneEvent> Events)> Parts()
    {
        if (_barrier != 0) yield break;
        var events = Events;
        if (_segments is null || _segments.Length == 0)
        {
            yield return (_batchId, new ArraySegment<KeystoneEvent>(events));
            yield break;
        }
        var start = 0;
        foreach (var segment in _segments)
        {
            yield return (segment.Id, new ArraySegment<KeystoneEvent>(events, start, segment.End - start));
            start = segment.End;
        }
    }
}

/// <summary>A run of a batch's events, from the previous segment's end to <see cref="End"/> (exclusive).</summary>
[GenerateSerializer, Immutable]
public readonly record struct BatchSegment([property: Id(0)] Guid Id, [property: Id(1)] int End);

/// <summary>
/// An event on its way into a batch: either to be encoded, or (when <see cref="Source"/> is set and the event is the
/// unchanged one from there) a record of an existing batch to copy byte for byte.
/// </summary>
public readonly record struct BatchItem(KeystoneEvent Event, EventBatch? Source = null, int SourceIndex = -1)
{
    /// <summary>The bytes the item takes in a batch.</summary>
    public int Size => Source is { } source ? source.RecordSize(SourceIndex) : EventBatchCodec.EncodedSize(Event);
}

/// <summary>
/// The pipeline cannot take a batch now: the queue its events would enter holds as much as it may
/// (<c>Keystone:Streaming:LocalQueueCapacity</c>). Nothing of the batch was acknowledged; sending it again later is safe
/// (events that did reach the fronting log are de-duplicated by id). The SDK retries it; REST answers 503.
/// </summary>
[GenerateSerializer]
public class PipelineBusyException : Exception
{
    public PipelineBusyException() { }

    public PipelineBusyException(string message) : base(message) { }
}

/// <summary>
/// The fronting log did not make a batch durable (its storage failed or did not answer, after the storage client's own
/// retries): the batch was not acknowledged. Shares of it that reached the log before the failure are durable and go on;
/// sending the whole batch again is safe (de-duplicated by event id). The SDK retries it; REST answers 503.
/// </summary>
[GenerateSerializer]
public class FrontingLogUnavailableException : Exception
{
    public FrontingLogUnavailableException() { }

    public FrontingLogUnavailableException(string message) : base(message) { }
}
