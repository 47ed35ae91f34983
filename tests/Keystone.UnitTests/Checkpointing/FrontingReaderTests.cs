using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.UnitTests.Checkpointing;

/// <summary>The router's side of recovery, on an in-memory log: restore from a checkpoint and replay, de-duplicate by position.</summary>
public sealed class FrontingReaderTests
{
    private sealed class MemoryLog : IFrontingLog
    {
        public readonly List<EventBatch> Messages = [];
        public int Reads;

        public EventBatch Write(params string[] users)
        {
            var events = users.Select(u => new KeystoneEvent(Guid.NewGuid(), "user.login", DateTimeOffset.UnixEpoch, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", u)), EventMetadata.Empty)).ToArray();
            var message = new EventBatch(Guid.NewGuid(), 0, DateTimeOffset.UnixEpoch, events).AtPosition(Messages.Count + 1);
            Messages.Add(message);
            return message;
        }

        public Task<IFrontingLogWriter> OpenWriterAsync(int partition, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<IReadOnlyList<EventBatch>> ReadAsync(int partition, long from, long to, CancellationToken cancellationToken = default)
        {
            Reads++;
            return Task.FromResult<IReadOnlyList<EventBatch>>([.. Messages.Where(m => m.Position >= from && m.Position <= to)]);
        }
    }

    private readonly List<long> _routed = [];

    private Task Route(IReadOnlyList<EventBatch> batches)
    {
        _routed.AddRange(batches.Select(b => b.Position));
        return Task.CompletedTask;
    }

    [Fact]
    public async Task After_a_restart_it_replays_exactly_what_lies_past_the_last_checkpoint()
    {
        var log = new MemoryLog();
        for (var i = 0; i < 40; i++) log.Write($"u{i}");
        var reader = new FrontingReader(log, 0, covered: 25);

        await reader.CatchUpAsync(40, Route);

        Assert.Equal(Enumerable.Range(26, 15).Select(i => (long)i), _routed);
        Assert.Equal(15, reader.Replayed);
        Assert.Equal(40, reader.Position);
    }

    [Fact]
    public async Task A_message_at_or_below_the_mark_is_a_repeat()
    {
        var log = new MemoryLog();
        var m = Enumerable.Range(0, 5).Select(i => log.Write($"u{i}")).ToList();
        var reader = new FrontingReader(log, 0, covered: 0);

        await reader.DeliverAsync([m[0], m[1], m[2]], Route);
        await reader.DeliverAsync([m[1], m[2], m[3]], Route);
        await reader.DeliverAsync([m[3], m[4], m[4]], Route);

        Assert.Equal([1L, 2, 3, 4, 5], _routed);
        Assert.Equal(4, reader.Repeats);
        Assert.Equal(0, log.Reads);
    }

    [Fact]
    public async Task A_skipped_position_is_read_from_the_log_before_what_follows_it()
    {
        var log = new MemoryLog();
        var m = Enumerable.Range(0, 6).Select(i => log.Write($"u{i}")).ToList();
        var reader = new FrontingReader(log, 0, covered: 0);

        // 3 and 4 reached the log but not the stream.
        await reader.DeliverAsync([m[0], m[1], m[4 + 1]], Route);

        Assert.Equal([1L, 2, 3, 4, 5, 6], _routed);
        Assert.Equal(1, log.Reads);
    }

    [Fact]
    public async Task A_consumer_far_behind_the_stream_cache_loses_nothing_it_is_replayed_from_the_log()
    {
        // The stream kept only the newest message; the log has all of them.
        var log = new MemoryLog();
        for (var i = 0; i < 1000; i++) log.Write($"u{i}");
        var reader = new FrontingReader(log, 0, covered: 10);

        await reader.DeliverAsync([log.Messages[^1]], Route);

        Assert.Equal(Enumerable.Range(11, 990).Select(i => (long)i), _routed);
        Assert.Equal(989, reader.Replayed);
    }

    [Fact]
    public async Task Positions_that_never_reached_the_log_are_passed_over()
    {
        var log = new MemoryLog();
        var m = Enumerable.Range(0, 3).Select(i => log.Write($"u{i}")).ToList();
        log.Messages.RemoveAt(1);
        var reader = new FrontingReader(log, 0, covered: 0);

        await reader.DeliverAsync([m[0], m[2]], Route);

        Assert.Equal([1L, 3], _routed);
        Assert.Equal(3, reader.Position);
    }

    [Fact]
    public async Task A_failed_route_does_not_move_the_mark_so_the_redelivery_is_routed()
    {
        var log = new MemoryLog();
        var m = log.Write("u1");
        var reader = new FrontingReader(log, 0, covered: 0);

        await Assert.ThrowsAsync<InvalidOperationException>(() => reader.DeliverAsync([m], _ => throw new InvalidOperationException("append failed")));
        await reader.DeliverAsync([m], Route);

        Assert.Equal([1L], _routed);
    }

    [Fact]
    public async Task Messages_without_a_position_pass_through()
    {
        var reader = new FrontingReader(new MemoryLog(), 0, covered: 0);
        var plain = new EventBatch(Guid.NewGuid(), 0, DateTimeOffset.UnixEpoch, []);
        await reader.DeliverAsync([plain, plain], Route);
        Assert.Equal([0L, 0], _routed);
    }
}
