using Azure.Messaging.EventHubs;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Silo.Streaming;
using Keystone.UnitTests.Support;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Providers.Streams.Common;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Streaming.EventHubs;

namespace Keystone.UnitTests.Silo;

public class KeystoneEventHubDataAdapterTests
{
    private static readonly Lazy<Serializer> SharedSerializer = new(() =>
        new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>());

    private static KeystoneEventHubDataAdapter Adapter() => new(SharedSerializer.Value);

    private static EventBatch Batch(int partition = 3) => new(
        Guid.Parse("3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        partition,
        new DateTimeOffset(2024, 12, 26, 12, 0, 0, 125, TimeSpan.Zero),
        [Sample.PlayStarted(userId: "user-1"), Sample.Payment(userId: "user-2"), Sample.HealthCheck()]);

    // What the Event Hubs client hands a consumer: the sent body and properties plus the service's own fields.
    private static EventData Received(EventData sent, string partitionKey, long sequenceNumber = 42) =>
        EventHubsModelFactory.EventData(
            sent.EventBody,
            new Dictionary<string, object>(sent.Properties),
            partitionKey: partitionKey,
            sequenceNumber: sequenceNumber,
            offsetString: "1024",
            enqueuedTime: new DateTimeOffset(2024, 12, 26, 12, 0, 1, TimeSpan.Zero));

    [Fact]
    public void The_partition_key_is_the_stream_key()
    {
        Assert.Equal("3", Adapter().GetPartitionKey(StreamId.Create("archive-all-events", "3")));
        Assert.Equal("17", Adapter().GetPartitionKey(StreamId.Create("keystone-fronting", "17")));
    }

    [Fact]
    public void A_batch_becomes_a_readable_lz4_ndjson_message()
    {
        var batch = Batch();
        var data = Adapter().ToQueueMessage(StreamId.Create("archive-all-events", "3"), new[] { batch }, null, null);

        Assert.Equal("application/x-ndjson+lz4", data.ContentType);
        Assert.Equal("3f2504e0-4f89-41d3-9a0c-0305e82c3301", data.Properties[KeystoneEventHubDataAdapter.BatchIdProperty]);
        Assert.Equal(3, data.Properties[KeystoneEventHubDataAdapter.PartitionProperty]);
        Assert.Equal(3, data.Properties[KeystoneEventHubDataAdapter.CountProperty]);
        Assert.Equal("2024-12-26T12:00:00.125Z", data.Properties[KeystoneEventHubDataAdapter.CreatedAtProperty]);

        // Any consumer can read the body without Orleans: LZ4 pickle framing around one envelope per line.
        var lines = System.Text.Encoding.UTF8.GetString(Lz4Codec.Decompress(data.EventBody.ToArray(), 1 << 20)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(batch.Events, lines.Select(EventJson.Parse));
    }

    [Fact]
    public void A_batch_survives_the_round_trip_through_event_hubs_and_the_cache()
    {
        var adapter = Adapter();
        var batch = Batch(partition: 5);
        var streamId = StreamId.Create("analytics-playback-events", "5");

        var sent = adapter.ToQueueMessage(streamId, new[] { batch }, null, null);
        var received = Received(sent, adapter.GetPartitionKey(streamId));
        var position = adapter.GetStreamPosition("0", received);
        Assert.Equal(streamId, position.StreamId);

        var cached = adapter.FromQueueMessage(position, received, DateTime.UtcNow, size => new ArraySegment<byte>(new byte[size]));
        var container = adapter.GetBatchContainer(ref cached);

        Assert.Equal(streamId, container.StreamId);
        Assert.Equal("analytics-playback-events", container.StreamId.GetNamespace());
        var (item, token) = Assert.Single(container.GetEvents<EventBatch>());
        Assert.Equal(batch.BatchId, item.BatchId);
        Assert.Equal(batch.Partition, item.Partition);
        Assert.Equal(batch.CreatedAt, item.CreatedAt);
        Assert.Equal(batch.Events, item.Events);
        Assert.Equal(42, ((EventHubSequenceToken)token).SequenceNumber);
        Assert.Same(token, container.SequenceToken);
        Assert.Empty(container.GetEvents<string>());
    }

    [Fact]
    public void Other_payloads_fall_back_to_the_orleans_format()
    {
        var adapter = Adapter();
        var streamId = StreamId.Create("some-namespace", "7");

        var sent = adapter.ToQueueMessage(streamId, new[] { "hello", "world" }, null, null);
        Assert.False(sent.Properties.ContainsKey(KeystoneEventHubDataAdapter.BatchIdProperty));

        var received = Received(sent, "7");
        var cached = adapter.FromQueueMessage(adapter.GetStreamPosition("1", received), received, DateTime.UtcNow, size => new ArraySegment<byte>(new byte[size]));
        var container = adapter.GetBatchContainer(ref cached);

        Assert.Equal(["hello", "world"], container.GetEvents<string>().Select(t => t.Item1));
        Assert.Equal(streamId, container.StreamId);
    }

    [Fact]
    public void Decode_inverts_encode()
    {
        var batch = Batch();
        var decoded = KeystoneEventHubDataAdapter.Decode(KeystoneEventHubDataAdapter.Encode(batch), batch.BatchId, batch.Partition, batch.CreatedAt);
        Assert.Equal(batch.Events, decoded.Events);
        Assert.Equal((batch.BatchId, batch.Partition, batch.CreatedAt), (decoded.BatchId, decoded.Partition, decoded.CreatedAt));
    }

    [Fact]
    public void An_empty_batch_round_trips()
    {
        var empty = new EventBatch(Guid.NewGuid(), 0, Sample.Now, []);
        Assert.Empty(KeystoneEventHubDataAdapter.Decode(KeystoneEventHubDataAdapter.Encode(empty), empty.BatchId, 0, Sample.Now).Events);
    }
}
