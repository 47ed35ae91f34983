using Keystone.Ingest;

namespace Keystone.Pipeline;

/// <summary>Splits items into stream messages that respect a count and a byte bound (exact encoded sizes).</summary>
public static class StreamChunker
{
    /// <summary>Consecutive runs of items within the bounds; an item bigger than <paramref name="maxBytes"/> travels alone.
    /// When <paramref name="items"/> is an array that fits in one run, that run is the array itself, not a copy.</summary>
    public static IEnumerable<BatchItem[]> Chunk(IReadOnlyList<BatchItem> items, int maxEvents, int maxBytes)
    {
        var start = 0;
        long bytes = 0;
        for (var i = 0; i < items.Count; i++)
        {
            var size = items[i].Size;
            if (i > start && (i - start >= maxEvents || bytes + size > maxBytes))
            {
                yield return Slice(items, start, i - start);
                start = i;
                bytes = 0;
            }
            bytes += size;
        }
        if (start < items.Count) yield return start == 0 && items is BatchItem[] whole ? whole : Slice(items, start, items.Count - start);
    }

    private static BatchItem[] Slice(IReadOnlyList<BatchItem> items, int start, int count)
    {
        var result = new BatchItem[count];
        for (var i = 0; i < count; i++) result[i] = items[start + i];
        return result;
    }

    /// <summary>
    /// The id of chunk <paramref name="index"/> of a batch: the batch id itself for the first chunk, a deterministic
    /// variant for the others, so a redelivered batch produces the same ids and consumers can recognise it.
    /// </summary>
    public static Guid ChunkId(Guid batchId, int index)
    {
        if (index == 0) return batchId;
        Span<byte> bytes = stackalloc byte[16];
        batchId.TryWriteBytes(bytes);
        // index + 1 as one 32-bit value: never 0, so no chunk but the first can come back as the batch id itself.
        var mix = (uint)index + 1;
        bytes[12] ^= (byte)(mix >> 24);
        bytes[13] ^= (byte)(mix >> 16);
        bytes[14] ^= (byte)(mix >> 8);
        bytes[15] ^= (byte)mix;
        return new Guid(bytes);
    }

    /// <summary>
    /// The id of a routed segment: chunk <paramref name="index"/> of input batch <paramref name="batchId"/>, and which
    /// events it holds. Routing the same input the same way gives the same id, so a consumer drops the repeat; routing
    /// it differently (a replay from the fronting log after a rule change, or after an event that was poison the first
    /// time) gives another id, so the consumer applies it and its entity grains drop by event id what they already have.
    /// </summary>
    public static Guid SegmentId(Guid batchId, int index, ReadOnlySpan<BatchItem> part)
    {
        Span<byte> input = stackalloc byte[16 + 16 + 4];
        ChunkId(batchId, index).TryWriteBytes(input);
        Span<byte> id = stackalloc byte[16];
        var set = input.Slice(16, 16);
        // XOR is order-free: the set of events, however they were ordered.
        for (var i = 0; i < part.Length; i++)
        {
            part[i].Event.EventId.TryWriteBytes(id);
            for (var k = 0; k < 16; k++) set[k] ^= id[k];
        }
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(input[32..], part.Length);
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(input, hash);
        return new Guid(hash[..16]);
    }

    /// <summary>
    /// Packs segments that are ranges of one buffer (see <see cref="SegmentBuffer"/>) into as few stream messages as
    /// the limits allow, keeping every segment whole. Each message gets its own array, exactly sized, and the buffer's
    /// items are copied into it once: the buffer is the caller's to reuse.
    /// </summary>
    public static List<EventBatch> Pack(SegmentBuffer buffer, int partition, DateTimeOffset createdAt, int maxEvents, int maxBytes)
    {
        var result = new List<EventBatch>();
        var items = buffer.Items;
        var segments = buffer.Segments;
        var first = 0;
        while (first < segments.Count)
        {
            // The segments [first, last) go into one message.
            var last = first + 1;
            var count = segments[first].Count;
            var bytes = segments[first].Bytes;
            while (last < segments.Count && count + segments[last].Count <= maxEvents && bytes + segments[last].Bytes <= maxBytes)
            {
                count += segments[last].Count;
                bytes += segments[last].Bytes;
                last++;
            }
            var start = segments[first].Start;
            var messageItems = items.Slice(start, count).ToArray();
            if (last - first == 1)
            {
                result.Add(EventBatch.ComposeOwned(segments[first].Id, partition, createdAt, messageItems));
            }
            else
            {
                var marks = new BatchSegment[last - first];
                for (var i = first; i < last; i++) marks[i - first] = new BatchSegment(segments[i].Id, segments[i].Start - start + segments[i].Count);
                result.Add(EventBatch.ComposeOwned(Guid.NewGuid(), partition, createdAt, messageItems, marks));
            }
            first = last;
        }
        return result;
    }
}

/// <summary>
/// One topic's share of a router delivery: the items of every input batch, in order, in one buffer, cut into named
/// segments within the message bounds. Reused from delivery to delivery, so that routing does not build an array per
/// input batch and topic only to copy it into a message (those arrays were about 2 % of the bytes allocated per event).
/// </summary>
public sealed class SegmentBuffer
{
    private BatchItem[] _items = [];
    private int _count;
    private readonly List<(Guid Id, int Start, int Count, long Bytes)> _segments = [];

    public ReadOnlySpan<BatchItem> Items => _items.AsSpan(0, _count);

    public IReadOnlyList<(Guid Id, int Start, int Count, long Bytes)> Segments => _segments;

    /// <summary>Room for one input batch's <paramref name="count"/> items for this topic, to be filled by the caller and
    /// then cut with <see cref="Cut"/>.</summary>
    public Span<BatchItem> Reserve(int count)
    {
        if (_count + count > _items.Length)
        {
            var grown = new BatchItem[Math.Max(_count + count, _items.Length * 2)];
            _items.AsSpan(0, _count).CopyTo(grown);
            _items = grown;
        }
        return _items.AsSpan(_count, count);
    }

    /// <summary>Takes the <paramref name="count"/> items just written into <see cref="Reserve"/>'s room, cut into segments
    /// of at most <paramref name="maxEvents"/> events and <paramref name="maxBytes"/> bytes (an item bigger than that
    /// travels alone), named after <paramref name="batchId"/> as
    /// <see cref="StreamChunker.SegmentId(Guid, int, ReadOnlySpan{BatchItem})"/> says.</summary>
    public void Cut(Guid batchId, int count, int maxEvents, int maxBytes)
    {
        if (count == 0) return;
        ReadOnlySpan<BatchItem> added = _items.AsSpan(_count, count);
        var chunk = 0;
        var start = 0;
        long bytes = 0;
        for (var i = 0; i < count; i++)
        {
            var size = added[i].Size;
            if (i > start && (i - start >= maxEvents || bytes + size > maxBytes))
            {
                _segments.Add((StreamChunker.SegmentId(batchId, chunk++, added[start..i]), _count + start, i - start, bytes));
                start = i;
                bytes = 0;
            }
            bytes += size;
        }
        _segments.Add((StreamChunker.SegmentId(batchId, chunk, added[start..]), _count + start, count - start, bytes));
        _count += count;
    }

    /// <summary>Empties the buffer, keeping its capacity, and lets go of the events it referred to.</summary>
    public void Clear()
    {
        _items.AsSpan(0, _count).Clear();
        _count = 0;
        _segments.Clear();
    }
}
