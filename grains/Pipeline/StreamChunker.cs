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
    public static Guid SegmentId(Guid batchId, int index, IReadOnlyList<BatchItem> part)
    {
        Span<byte> input = stackalloc byte[16 + 16 + 4];
        ChunkId(batchId, index).TryWriteBytes(input);
        Span<byte> id = stackalloc byte[16];
        var set = input.Slice(16, 16);
        // XOR is order-free: the set of events, however they were ordered.
        for (var i = 0; i < part.Count; i++)
        {
            part[i].Event.EventId.TryWriteBytes(id);
            for (var k = 0; k < 16; k++) set[k] ^= id[k];
        }
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(input[32..], part.Count);
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(input, hash);
        return new Guid(hash[..16]);
    }

    /// <summary>
    /// Packs segments (each already within the limits) into as few stream messages as the limits allow, keeping
    /// every segment whole so its id still names exactly the same events.
    /// </summary>
    public static List<EventBatch> Pack(IReadOnlyList<(Guid Id, BatchItem[] Items)> segments, int partition, DateTimeOffset createdAt, int maxEvents, int maxBytes)
    {
        var result = new List<EventBatch>();
        var message = new List<(Guid Id, BatchItem[] Items)>();
        var count = 0;
        long bytes = 0;

        // A message of one segment is that segment's array; several are copied once into one. Either way the message
        // owns its items (the segments are the caller's to give).
        void Emit()
        {
            if (message.Count == 0) return;
            if (message.Count == 1)
            {
                result.Add(EventBatch.ComposeOwned(message[0].Id, partition, createdAt, message[0].Items));
            }
            else
            {
                var items = new BatchItem[count];
                var marks = new BatchSegment[message.Count];
                var at = 0;
                for (var i = 0; i < message.Count; i++)
                {
                    message[i].Items.CopyTo(items, at);
                    at += message[i].Items.Length;
                    marks[i] = new BatchSegment(message[i].Id, at);
                }
                result.Add(EventBatch.ComposeOwned(Guid.NewGuid(), partition, createdAt, items, marks));
            }
            message.Clear();
            count = 0;
            bytes = 0;
        }

        foreach (var (id, segmentItems) in segments)
        {
            long size = 0;
            foreach (var item in segmentItems) size += item.Size;
            if (message.Count > 0 && (count + segmentItems.Length > maxEvents || bytes + size > maxBytes)) Emit();
            message.Add((id, segmentItems));
            count += segmentItems.Length;
            bytes += size;
        }
        Emit();
        return result;
    }
}
