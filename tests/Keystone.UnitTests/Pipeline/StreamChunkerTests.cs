using Keystone.Events;
using Keystone.Pipeline;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Pipeline;

public class StreamChunkerTests
{
    private static KeystoneEvent[] Events(int n) => Enumerable.Range(0, n).Select(i => Sample.PlayStarted(userId: $"user-{i:D4}")).ToArray();

    [Fact]
    public void Count_bound_splits_into_full_chunks_and_a_remainder()
    {
        var events = Events(25);
        var chunks = StreamChunker.Chunk(events, maxEvents: 10, maxBytes: int.MaxValue).ToList();

        Assert.Equal([10, 10, 5], chunks.Select(c => c.Length));
        Assert.Equal(events, chunks.SelectMany(c => c));
    }

    [Fact]
    public void Byte_bound_splits_before_a_chunk_would_exceed_it()
    {
        var events = Events(10);
        var size = StreamChunker.EstimatedSize(events[0]);
        Assert.All(events, e => Assert.Equal(size, StreamChunker.EstimatedSize(e)));

        var chunks = StreamChunker.Chunk(events, maxEvents: 100, maxBytes: size * 3 + size / 2).ToList();

        Assert.Equal([3, 3, 3, 1], chunks.Select(c => c.Length));
        Assert.Equal(events, chunks.SelectMany(c => c));
        Assert.Equal([3], StreamChunker.Chunk(events[..3], 100, size * 3).Select(c => c.Length));
    }

    [Fact]
    public void An_event_larger_than_the_byte_bound_forms_its_own_chunk()
    {
        var small = Events(2);
        var big = Sample.Of("content.added", Payload.Create(("video_id", "v"), ("title", new string('t', 5000))));
        var chunks = StreamChunker.Chunk([small[0], big, small[1]], maxEvents: 100, maxBytes: 1000).ToList();

        Assert.Equal(3, chunks.Count);
        Assert.Same(big, Assert.Single(chunks[1]));
        Assert.Same(small[0], Assert.Single(chunks[0]));
        Assert.Same(small[1], Assert.Single(chunks[2]));
    }

    [Fact]
    public void Nothing_in_nothing_out()
    {
        Assert.Empty(StreamChunker.Chunk([], 10, 1000));
    }

    [Fact]
    public void Estimated_size_is_an_upper_bound_of_the_json()
    {
        var longest = Sample.PlayStarted() with { Timestamp = new DateTimeOffset(2024, 12, 26, 12, 0, 0, TimeSpan.FromHours(-5)).AddTicks(1234567) };
        Assert.Equal("2024-12-26T12:00:00.1234567-05:00", EventJson.FormatTimestamp(longest.Timestamp));
        foreach (var e in new[] { Sample.PlayStarted(), longest, Sample.Payment(), Sample.HealthCheck(region: null), Sample.Of("a.b", Payload.Empty, region: null) })
            Assert.True(StreamChunker.EstimatedSize(e) >= EventJson.SizeOf(e), $"{e.EventType}: estimated {StreamChunker.EstimatedSize(e)}, actual {EventJson.SizeOf(e)}");
    }

    [Fact]
    public void Chunks_serialize_within_the_byte_bound()
    {
        var events = Enumerable.Range(0, 200).Select(i => i % 3 == 0 ? Sample.Payment(userId: $"u{i}") : Sample.PlayStarted(userId: $"user-{i}")).ToArray();
        var chunks = StreamChunker.Chunk(events, maxEvents: 1000, maxBytes: 4096).ToList();

        Assert.True(chunks.Count > 1);
        Assert.All(chunks, c => Assert.True(c.Sum(EventJson.SizeOf) <= 4096, $"{c.Length} events, {c.Sum(EventJson.SizeOf)} bytes"));
        Assert.Equal(events, chunks.SelectMany(c => c));
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
}
