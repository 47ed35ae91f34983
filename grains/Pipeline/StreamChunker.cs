using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.Pipeline;

/// <summary>Splits events into stream messages that respect a count and a byte bound.</summary>
public static class StreamChunker
{
    public static IEnumerable<KeystoneEvent[]> Chunk(IReadOnlyList<KeystoneEvent> events, int maxEvents, int maxBytes)
    {
        var start = 0;
        long bytes = 0;
        for (var i = 0; i < events.Count; i++)
        {
            var size = EstimatedSize(events[i]);
            if (i > start && (i - start >= maxEvents || bytes + size > maxBytes))
            {
                yield return Slice(events, start, i - start);
                start = i;
                bytes = 0;
            }
            bytes += size;
        }
        if (start < events.Count) yield return Slice(events, start, events.Count - start);
    }

    private static KeystoneEvent[] Slice(IReadOnlyList<KeystoneEvent> events, int start, int count)
    {
        var result = new KeystoneEvent[count];
        for (var i = 0; i < count; i++) result[i] = events[start + i];
        return result;
    }

    /// <summary>An upper bound of an event's serialized size: the payload plus room for the envelope's strings.</summary>
    public static int EstimatedSize(KeystoneEvent e)
    {
        // The envelope's keys and punctuation, a UUID and the longest timestamp (7 fraction digits and an offset) take 206 bytes.
        var size = 206 + e.Payload.Length + e.EventType.Length + e.Version.Length + e.Source.Service.Length
                   + (e.Source.DeviceType?.Length ?? 0) + (e.Source.Region?.Length ?? 0);
        foreach (var (k, v) in e.Metadata) size += k.Length + v.Length + 8;
        return size;
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
        // index + 1 as one 32-bit value: never zero, so no chunk gets the batch id back (index 255 used to).
        var mask = (uint)index + 1;
        bytes[12] ^= (byte)(mask >> 24);
        bytes[13] ^= (byte)(mask >> 16);
        bytes[14] ^= (byte)(mask >> 8);
        bytes[15] ^= (byte)mask;
        return new Guid(bytes);
    }

    /// <summary>
    /// Packs segments (each already within the limits) into as few stream messages as the limits allow, keeping
    /// every segment whole so its id still names exactly the same events.
    /// </summary>
    public static List<EventBatch> Pack(IReadOnlyList<(Guid Id, KeystoneEvent[] Events)> segments, int partition, DateTimeOffset createdAt, int maxEvents, int maxBytes)
    {
        var result = new List<EventBatch>();
        var events = new List<KeystoneEvent>();
        var marks = new List<BatchSegment>();
        long bytes = 0;

        void Emit()
        {
            if (marks.Count == 0) return;
            result.Add(marks.Count == 1
                ? new EventBatch(marks[0].Id, partition, createdAt, [.. events])
                : new EventBatch(Guid.NewGuid(), partition, createdAt, [.. events], [.. marks]));
            events.Clear();
            marks.Clear();
            bytes = 0;
        }

        foreach (var (id, segmentEvents) in segments)
        {
            long size = 0;
            foreach (var e in segmentEvents) size += EstimatedSize(e);
            if (marks.Count > 0 && (events.Count + segmentEvents.Length > maxEvents || bytes + size > maxBytes)) Emit();
            events.AddRange(segmentEvents);
            marks.Add(new BatchSegment(id, events.Count));
            bytes += size;
        }
        Emit();
        return result;
    }
}
