using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Pipeline;

public class StreamChunkerTests
{
    private static BatchItem[] Items(int n) => Enumerable.Range(0, n).Select(i => new BatchItem(Sample.PlayStarted(userId: $"user-{i:D4}"))).ToArray();

    [Fact]
    public void Count_bound_splits_into_full_chunks_and_a_remainder()
    {
        var items = Items(25);
        var chunks = StreamChunker.Chunk(items, maxEvents: 10, maxBytes: int.MaxValue).ToList();

        Assert.Equal([10, 10, 5], chunks.Select(c => c.Length));
        Assert.Equal(items, chunks.SelectMany(c => c));
    }

    [Fact]
    public void Byte_bound_splits_before_a_chunk_would_exceed_it()
    {
        var items = Items(10);
        var size = items[0].Size;
        Assert.All(items, i => Assert.Equal(size, i.Size));

        var chunks = StreamChunker.Chunk(items, maxEvents: 100, maxBytes: size * 3 + size / 2).ToList();

        Assert.Equal([3, 3, 3, 1], chunks.Select(c => c.Length));
        Assert.Equal(items, chunks.SelectMany(c => c));
        Assert.Equal([3], StreamChunker.Chunk(items[..3], 100, size * 3).Select(c => c.Length));
    }

    [Fact]
    public void An_event_larger_than_the_byte_bound_forms_its_own_chunk()
    {
        var small = Items(2);
        var big = new BatchItem(Sample.Of("content.added", Payload.Create(("video_id", "v"), ("title", new string('t', 5000)))));
        var chunks = StreamChunker.Chunk([small[0], big, small[1]], maxEvents: 100, maxBytes: 1000).ToList();

        Assert.Equal(3, chunks.Count);
        Assert.Equal(big, Assert.Single(chunks[1]));
        Assert.Equal(small[0], Assert.Single(chunks[0]));
        Assert.Equal(small[1], Assert.Single(chunks[2]));
    }

    [Fact]
    public void Nothing_in_nothing_out()
    {
        Assert.Empty(StreamChunker.Chunk([], 10, 1000));
    }

    [Fact]
    public void Item_size_is_the_exact_encoded_size()
    {
        foreach (var e in new[] { Sample.PlayStarted(), Sample.Payment(), Sample.HealthCheck(region: null), Sample.Of("a.b", Payload.Empty, region: null) })
        {
            var batch = EventBatch.Compose(Guid.NewGuid(), 0, Sample.Now, [new BatchItem(e)]);
            Assert.Equal(batch.EncodedLength - EventBatchCodec.HeaderSize(1), new BatchItem(e).Size);
            Assert.Equal(new BatchItem(e).Size, new BatchItem(e, batch, 0).Size);
        }
    }

    [Fact]
    public void Chunks_encode_within_the_byte_bound()
    {
        var items = Enumerable.Range(0, 200).Select(i => new BatchItem(i % 3 == 0 ? Sample.Payment(userId: $"u{i}") : Sample.PlayStarted(userId: $"user-{i}"))).ToArray();
        var chunks = StreamChunker.Chunk(items, maxEvents: 1000, maxBytes: 4096).ToList();

        Assert.True(chunks.Count > 1);
        Assert.All(chunks, c => Assert.True(EventBatch.Compose(Guid.NewGuid(), 0, Sample.Now, c).EncodedLength <= 4096 + EventBatchCodec.HeaderSize(c.Length)));
        Assert.Equal(items, chunks.SelectMany(c => c));
    }

    [Fact]
    public void Copied_records_decode_to_the_same_events_as_encoded_ones()
    {
        var source = EventBatch.Compose(Guid.NewGuid(), 1, Sample.Now, Items(5));
        var changed = Sample.Payment();
        var mixed = EventBatch.Compose(Guid.NewGuid(), 1, Sample.Now, [new BatchItem(source.Events[3], source, 3), new BatchItem(changed), new BatchItem(source.Events[0], source, 0)]);

        var decoded = EventBatch.FromEncoded(mixed.CopyEncoded()).Events;
        Assert.Equal([source.Events[3], changed, source.Events[0]], decoded);
    }

    // One router delivery's share of a topic: each input batch's items added in turn.
    private static SegmentBuffer Buffer(int maxEvents, int maxBytes, params (Guid BatchId, BatchItem[] Items)[] batches)
    {
        var buffer = new SegmentBuffer();
        foreach (var (id, items) in batches)
        {
            items.CopyTo(buffer.Reserve(items.Length));
            buffer.Cut(id, items.Length, maxEvents, maxBytes);
        }
        return buffer;
    }

    [Fact]
    public void Pack_keeps_segments_whole_and_names_them()
    {
        var (a, b, c) = (Items(3), Items(2), Items(4));
        var (idA, idB, idC) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        var messages = StreamChunker.Pack(Buffer(100, int.MaxValue, (idA, a), (idB, b), (idC, c)), partition: 2, Sample.Now, maxEvents: 6, maxBytes: int.MaxValue);

        Assert.Equal(2, messages.Count);
        Assert.Equal([(StreamChunker.SegmentId(idA, 0, a), 0, 3), (StreamChunker.SegmentId(idB, 0, b), 3, 2)], messages[0].SegmentRanges().ToArray());
        // A message with one segment is named by it.
        Assert.Equal(StreamChunker.SegmentId(idC, 0, c), messages[1].BatchId);
        Assert.Equal([(messages[1].BatchId, 0, 4)], messages[1].SegmentRanges().ToArray());
        Assert.All(messages, m => Assert.Equal(2, m.Partition));
    }

    [Fact]
    public void Pack_hands_each_message_its_items_in_order_and_encoded_as_the_events_themselves()
    {
        var (a, b, c) = (Items(3), Items(2), Items(4));
        var messages = StreamChunker.Pack(Buffer(100, int.MaxValue, (Guid.NewGuid(), a), (Guid.NewGuid(), b), (Guid.NewGuid(), c)), partition: 2, Sample.Now, maxEvents: 6, maxBytes: int.MaxValue);

        Assert.Equal(a.Concat(b).Select(i => i.Event), messages[0].Events);
        Assert.Equal(c.Select(i => i.Event), messages[1].Events);
        Assert.Equal(EventBatchCodec.Encode([.. a.Concat(b).Select(i => i.Event)]), messages[0].Encoded.ToArray());
    }

    [Fact]
    public void A_batch_share_is_cut_at_the_bounds_into_the_segments_its_chunks_would_make()
    {
        // The ids must not depend on how the router holds the items: a replay of the same input names the same segments.
        var items = Items(25);
        var id = Guid.NewGuid();
        var buffer = Buffer(10, int.MaxValue, (id, items));
        var chunks = StreamChunker.Chunk(items, maxEvents: 10, maxBytes: int.MaxValue).ToList();

        Assert.Equal(chunks.Select((chunk, k) => (StreamChunker.SegmentId(id, k, chunk), chunk.Length)), buffer.Segments.Select(s => (s.Id, s.Count)));
        Assert.Equal([0, 10, 20], buffer.Segments.Select(s => s.Start));
        Assert.Equal(items.Sum(i => (long)i.Size), buffer.Segments.Sum(s => s.Bytes));

        // Three segments of 10, 10 and 5 events: no two fit in a message of 10.
        var messages = StreamChunker.Pack(buffer, partition: 0, Sample.Now, maxEvents: 10, maxBytes: int.MaxValue);
        Assert.Equal([10, 10, 5], messages.Select(m => m.Count));
        Assert.Equal(items.Select(i => i.Event), messages.SelectMany(m => m.Events));
    }

    [Fact]
    public void A_cleared_buffer_lets_go_of_its_events_and_the_messages_keep_theirs()
    {
        var first = Items(4);
        var buffer = Buffer(100, int.MaxValue, (Guid.NewGuid(), first));
        var messages = StreamChunker.Pack(buffer, partition: 0, Sample.Now, maxEvents: 100, maxBytes: int.MaxValue);

        buffer.Clear();
        Assert.Equal(0, buffer.Items.Length);
        Assert.Empty(buffer.Segments);
        Assert.Equal(first.Select(i => i.Event), Assert.Single(messages).Events);

        // Reused: the next delivery's share starts at the beginning and holds only its own items.
        var next = Items(2);
        next.CopyTo(buffer.Reserve(next.Length));
        buffer.Cut(Guid.NewGuid(), next.Length, 100, int.MaxValue);
        Assert.Equal(next.Select(i => i.Event), Assert.Single(StreamChunker.Pack(buffer, 0, Sample.Now, 100, int.MaxValue)).Events);
        Assert.Equal(first.Select(i => i.Event), Assert.Single(messages).Events);
    }

    [Fact]
    public void Chunk_returns_an_array_that_fits_as_it_is_and_nothing_for_no_items()
    {
        var items = Items(3);
        Assert.Same(items, Assert.Single(StreamChunker.Chunk(items, maxEvents: 10, maxBytes: int.MaxValue)));
        Assert.Empty(StreamChunker.Chunk(Array.Empty<BatchItem>(), maxEvents: 10, maxBytes: int.MaxValue));
        // A list is copied: its owner may change it.
        var list = items.ToList();
        Assert.Equal(items, Assert.Single(StreamChunker.Chunk(list, maxEvents: 10, maxBytes: int.MaxValue)));
    }

    [Fact]
    public void An_owned_composition_refers_to_the_first_encoded_source_and_encodes_as_a_copied_one()
    {
        var source = new EventBatch(Guid.NewGuid(), 1, Sample.Now, [.. Items(4).Select(i => i.Event)]);
        var hop = EventBatch.Compose(Guid.NewGuid(), 1, Sample.Now, [new BatchItem(source.Events[2], source, 2), new BatchItem(source.Events[0], source, 0)]);
        var changed = Sample.Payment();
        BatchItem[] owned = [new BatchItem(hop.Events[1], hop, 1), new BatchItem(changed)];
        var copied = EventBatch.Compose(Guid.NewGuid(), 1, Sample.Now, owned.ToArray());

        var adopted = EventBatch.ComposeOwned(Guid.NewGuid(), 1, Sample.Now, owned);

        Assert.Same(source, owned[0].Source); // flattened in place: one level, whatever the hops
        Assert.Equal(copied.EncodedLength, adopted.EncodedLength);
        Assert.Equal(copied.Encoded.ToArray(), adopted.Encoded.ToArray());
        Assert.Equal([source.Events[0], changed], adopted.Events);
    }

    [Fact]
    public void Chunk_zero_keeps_the_batch_id()
    {
        var batch = Guid.NewGuid();
        Assert.Equal(batch, StreamChunker.ChunkId(batch, 0));
    }

    [Fact]
    public void Chunk_ids_are_deterministic()
    {
        var batch = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        Assert.Equal(StreamChunker.ChunkId(batch, 7), StreamChunker.ChunkId(batch, 7));
        Assert.Equal(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950c"), StreamChunker.ChunkId(batch, 1));
        Assert.Equal(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950a"), StreamChunker.ChunkId(batch, 3));
    }

    [Fact]
    public void Chunk_ids_are_distinct_for_every_index()
    {
        // A batch of 100,000 events at 100 per message has 1,000 chunks; every one needs its own id.
        var batch = Guid.NewGuid();
        var indexes = Enumerable.Range(0, 5000).Concat([65_535, 65_536, 1 << 24, int.MaxValue]).ToList();
        var ids = indexes.Select(i => StreamChunker.ChunkId(batch, i)).ToList();
        Assert.Equal(indexes.Count, ids.Distinct().Count());
    }

    [Fact]
    public void A_segment_id_names_the_input_chunk_and_the_set_of_events_it_holds()
    {
        var batch = Guid.NewGuid();
        var items = Items(4);
        var id = StreamChunker.SegmentId(batch, 0, items);

        // The same routing again (a redelivery, a replay under the same rules): the same id, in any order.
        Assert.Equal(id, StreamChunker.SegmentId(batch, 0, [.. items.Reverse()]));
        // A replay that routes the input differently (an event that was poison the first time): another id.
        Assert.NotEqual(id, StreamChunker.SegmentId(batch, 0, items[..3]));
        Assert.NotEqual(id, StreamChunker.SegmentId(batch, 1, items));
        Assert.NotEqual(id, StreamChunker.SegmentId(Guid.NewGuid(), 0, items));
    }
}
