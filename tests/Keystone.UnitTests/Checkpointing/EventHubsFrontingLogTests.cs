using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Keystone.UnitTests.Checkpointing;

/// <summary>
/// The fronting log on Event Hubs, on an in-memory hub that numbers events as Event Hubs does (per partition, from 0,
/// never reused, the oldest dropped by retention). The checkpoint owns the offsets: a position is a sequence number
/// + 1, and recovery reads the hub from the position the coordinator recorded.
/// </summary>
public sealed class EventHubsFrontingLogTests
{
    private sealed class MemoryHub(int partitions, int maxPerSend = int.MaxValue) : IEventHubPartitions
    {
        private readonly Dictionary<string, List<byte[]?>> _events = Enumerable.Range(0, partitions).ToDictionary(p => p.ToString(), _ => new List<byte[]?>());

        public string Hub => "keystone-fronting";

        public int Sends;

        /// <summary>The next send fails; when <c>true</c>, after its events landed (a timeout the service did not see).</summary>
        public bool? FailNextSend;

        // Scrambled, as a service may list them: the log must map Keystone partition 2 to hub partition "2", not "10".
        public Task<IReadOnlyList<string>> GetPartitionIdsAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>>([.. _events.Keys.OrderBy(k => k, StringComparer.Ordinal).Reverse()]);

        public Task<EventHubPartitionState> GetPartitionStateAsync(string partitionId, CancellationToken cancellationToken)
        {
            var events = _events[partitionId];
            var beginning = events.FindIndex(e => e is not null);
            return Task.FromResult(beginning < 0
                ? new EventHubPartitionState(events.Count, events.Count - 1, true)
                : new EventHubPartitionState(beginning, events.Count - 1, false));
        }

        public Task<int> SendAsync(string partitionId, IReadOnlyList<byte[]> bodies, CancellationToken cancellationToken)
        {
            var count = Math.Min(bodies.Count, maxPerSend);
            var fail = FailNextSend;
            FailNextSend = null;
            if (fail == false) throw new TimeoutException("send failed before reaching the hub");
            Sends++;
            _events[partitionId].AddRange(bodies.Take(count).Select(b => b.ToArray()));
            if (fail == true) throw new TimeoutException("send timed out after the hub took it");
            return Task.FromResult(count);
        }

        public Task<IReadOnlyList<EventHubRecord>> ReadAsync(string partitionId, long fromSequenceNumber, int maxCount, CancellationToken cancellationToken)
        {
            var events = _events[partitionId];
            var records = new List<EventHubRecord>();
            for (var s = fromSequenceNumber; s < events.Count && records.Count < maxCount; s++)
                if (events[(int)s] is { } body) records.Add(new EventHubRecord(s, body));
            return Task.FromResult<IReadOnlyList<EventHubRecord>>(records);
        }

        /// <summary>Retention: events before <paramref name="sequenceNumber"/> are gone.</summary>
        public void ExpireBefore(string partitionId, long sequenceNumber)
        {
            for (var s = 0; s < sequenceNumber; s++) _events[partitionId][s] = null;
        }

        /// <summary>An event from some other producer, framed as position <paramref name="position"/>.</summary>
        public void Foreign(string partitionId, long position, EventBatch message)
        {
            var body = new byte[SegmentedFrontingLog.FrameSize(message)];
            SegmentedFrontingLog.Encode(body, position, message);
            _events[partitionId].Add(body);
        }

        public int Count(string partitionId) => _events[partitionId].Count;
    }

    private static EventBatch Message(string user) => new(Guid.NewGuid(), 2, DateTimeOffset.UnixEpoch,
        [new KeystoneEvent(Guid.NewGuid(), "user.login", DateTimeOffset.UnixEpoch, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", user)), EventMetadata.Empty)]);

    private static EventBatch[] Messages(int count, string prefix = "u") => [.. Enumerable.Range(0, count).Select(i => Message($"{prefix}{i}"))];

    [Fact]
    public async Task A_position_is_the_hub_sequence_number_plus_one_and_reads_back_as_written()
    {
        var hub = new MemoryHub(12);
        var log = new EventHubsFrontingLog(hub, 12);
        var writer = await log.OpenWriterAsync(2);
        Assert.Equal(0, writer.Last);

        var first = await writer.AppendAsync([Message("a"), Message("b")]);
        var second = await writer.AppendAsync([Message("c")]);

        Assert.Equal([1L, 2], first.Select(m => m.Position));
        Assert.Equal([3L], second.Select(m => m.Position));
        Assert.Equal(3, hub.Count("2"));
        Assert.Equal(0, hub.Count("10"));
        var read = await log.ReadAsync(2, 2, 3);
        Assert.Equal([2L, 3], read.Select(m => m.Position));
        Assert.Equal([first[1].BatchId, second[0].BatchId], read.Select(m => m.BatchId));
        Assert.Equal("c", read[1].Events.Single().Payload.GetString("user_id"));
        Assert.Empty(await log.ReadAsync(2, 4, 10));
        Assert.Empty(await log.ReadAsync(3, 1, 10));
    }

    [Fact]
    public async Task A_new_writer_continues_after_the_last_event_in_the_partition()
    {
        var hub = new MemoryHub(4);
        var before = await new EventHubsFrontingLog(hub, 4).OpenWriterAsync(1);
        await before.AppendAsync(Messages(7));

        // After a crash: a new activation, a new log object, the same hub.
        var after = await new EventHubsFrontingLog(hub, 4).OpenWriterAsync(1);

        Assert.Equal(7, after.Last);
        Assert.Equal([8L], (await after.AppendAsync([Message("x")])).Select(m => m.Position));
        Assert.Equal(8, hub.Count("1"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_a_failed_send_no_position_names_two_events(bool landed)
    {
        var hub = new MemoryHub(1);
        var log = new EventHubsFrontingLog(hub, 1);
        var writer = await log.OpenWriterAsync(0);
        await writer.AppendAsync(Messages(2, "a"));

        hub.FailNextSend = landed;
        await Assert.ThrowsAsync<TimeoutException>(() => writer.AppendAsync(Messages(3, "b")));
        var retried = await writer.AppendAsync(Messages(3, "c"));

        // Landed: the retry follows the three that made it (the router reads them as a gap; ids de-duplicate).
        // Not landed: nothing holds positions 3-5, and the retry takes them.
        Assert.Equal(landed ? [6L, 7, 8] : [3L, 4, 5], retried.Select(m => m.Position));
        var all = await log.ReadAsync(0, 1, 100);
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(m => m.Position));
        Assert.Equal(all.Count, all.Select(m => m.BatchId).Distinct().Count());
        Assert.Equal(retried.Select(m => m.BatchId), all.TakeLast(3).Select(m => m.BatchId));
        Assert.Equal(0, log.Mismatched);
    }

    [Fact]
    public async Task A_group_larger_than_one_hub_batch_goes_out_in_several_sends_with_dense_positions()
    {
        var hub = new MemoryHub(1, maxPerSend: 3);
        var requests = new Keystone.Storage.StorageRequests();
        var log = new EventHubsFrontingLog(hub, 1, requests: requests);
        var writer = await log.OpenWriterAsync(0);

        var placed = await writer.AppendAsync(Messages(7));

        Assert.Equal(3, hub.Sends);
        Assert.Equal(Enumerable.Range(1, 7).Select(i => (long)i), placed.Select(m => m.Position));
        Assert.Equal(placed.Select(m => m.BatchId), (await log.ReadAsync(0, 1, 7)).Select(m => m.BatchId));
        // Counted with the storage requests: the sends are the pipeline's durable writes.
        Assert.Equal(new Dictionary<string, long> { ["eventhubs.properties"] = 3, ["eventhubs.read"] = 1, ["eventhubs.send"] = 3 }, requests.Snapshot());
        Assert.Equal(["eventhubs.send /keystone-fronting/0"], requests.RecentWrites.Distinct());
    }

    [Fact]
    public async Task Recovery_replays_from_the_checkpoints_position_and_fills_a_gap_from_the_hub()
    {
        var hub = new MemoryHub(2);
        var log = new EventHubsFrontingLog(hub, 2);
        var writer = await log.OpenWriterAsync(1);
        var placed = (await writer.AppendAsync(Messages(10))).Concat(await writer.AppendAsync(Messages(10, "v"))).ToArray();

        // The coordinator's last completed checkpoint covered position 6: a restarted router starts there, reading
        // the hub by offset (nothing of Orleans' receivers, cache or checkpointer).
        var reader = new FrontingReader(log, 1, covered: 6);
        var routed = new List<long>();
        Task Route(IReadOnlyList<EventBatch> batches)
        {
            routed.AddRange(batches.Select(b => b.Position));
            return Task.CompletedTask;
        }
        await reader.CatchUpAsync(12, Route);
        Assert.Equal(Enumerable.Range(7, 6).Select(i => (long)i), routed);

        // Then the stream: a repeat, and a consumer that fell behind and next sees position 18 (13-17 never arrived).
        await reader.DeliverAsync([placed[11], placed[17], placed[18]], Route);

        Assert.Equal(Enumerable.Range(7, 13).Select(i => (long)i), routed);
        Assert.Equal(1, reader.Repeats);
        Assert.Equal(6 + 5, reader.Replayed);
    }

    [Fact]
    public async Task A_replay_whose_start_the_hub_no_longer_retains_says_how_much_is_lost()
    {
        var hub = new MemoryHub(1);
        var logger = new FakeLogger<EventHubsFrontingLog>();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        using var log = new EventHubsFrontingLog(hub, 1, logger, meterFactory: meters);
        using var expired = new MetricCollector<long>(meters, EventHubsFrontingLog.MeterName, "keystone.fronting.expired");
        var writer = await log.OpenWriterAsync(0);
        await writer.AppendAsync(Messages(9));
        hub.ExpireBefore("0", 5);

        var read = await log.ReadAsync(0, 2, 9);

        Assert.Equal([6L, 7, 8, 9], read.Select(m => m.Position));
        Assert.Equal(4, log.Expired);
        expired.RecordObservableInstruments();
        Assert.Equal(4, expired.LastMeasurement?.Value);
        var error = Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Error);
        Assert.Contains("positions 2 to 5 are past the hub's retention", error.Message, StringComparison.Ordinal);

        // Everything expired: the numbering goes on where it stopped.
        hub.ExpireBefore("0", 9);
        var reopened = await new EventHubsFrontingLog(hub, 1).OpenWriterAsync(0);
        Assert.Equal(9, reopened.Last);
    }

    [Fact]
    public async Task An_event_another_producer_wrote_is_read_at_the_hubs_position_and_reported()
    {
        var hub = new MemoryHub(1);
        var logger = new FakeLogger<EventHubsFrontingLog>();
        var log = new EventHubsFrontingLog(hub, 1, logger);
        var writer = await log.OpenWriterAsync(0);
        await writer.AppendAsync(Messages(2));
        hub.Foreign("0", 40, Message("stranger"));

        var read = await log.ReadAsync(0, 1, 3);

        Assert.Equal([1L, 2, 3], read.Select(m => m.Position));
        Assert.Equal("stranger", read[2].Events.Single().Payload.GetString("user_id"));
        Assert.Equal(1, log.Mismatched);
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Error && r.Message.Contains("another writer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_hub_with_fewer_partitions_than_keystone_is_refused_with_both_counts()
    {
        var log = new EventHubsFrontingLog(new MemoryHub(4), 8);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => log.OpenWriterAsync(0));

        Assert.Equal("Event Hub 'keystone-fronting' has 4 partitions and Keystone:Ingest:Partitions is 8: the fronting log needs one hub partition per Keystone partition (create the hub with at least 8).", e.Message);
    }

    [Fact]
    public async Task The_log_takes_plain_batches_and_sealing_deletes_nothing()
    {
        var hub = new MemoryHub(1);
        var log = new EventHubsFrontingLog(hub, 1);
        var writer = await log.OpenWriterAsync(0);
        await writer.AppendAsync(Messages(3));

        await Assert.ThrowsAsync<ArgumentException>(() => writer.AppendAsync([EventBatch.CheckpointBarrier(1, 0, 3, DateTimeOffset.UnixEpoch)]));
        await writer.SealBeforeAsync(3);

        Assert.Equal(3, (await log.ReadAsync(0, 1, 3)).Count);
    }
}
