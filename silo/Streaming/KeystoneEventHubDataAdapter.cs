using System.Buffers;
using System.Globalization;
using Azure.Messaging.EventHubs;
using Keystone.Events;
using Keystone.Ingest;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Streaming.EventHubs;
using Orleans.Streams;

namespace Keystone.Silo.Streaming;

/// <summary>
/// Maps Keystone batches onto Event Hubs messages in a form any consumer can read, not only Orleans: the body is
/// LZ4-compressed NDJSON of the envelopes, and the batch id, partition and count travel as application properties.
/// The Event Hubs partition key is the stream key, which for every Keystone topic is the partition number derived
/// from <c>user_id</c>, so one user's events stay in one Event Hubs partition and keep their order.
/// Other item types fall back to Orleans' own format.
/// </summary>
public sealed class KeystoneEventHubDataAdapter(Serializer serializer) : EventHubDataAdapter(serializer)
{
    public const string BatchIdProperty = "keystone-batch-id";
    public const string PartitionProperty = "keystone-partition";
    public const string CreatedAtProperty = "keystone-created-at";
    public const string CountProperty = "keystone-events";

    public override EventData ToQueueMessage<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext)
    {
        var items = events.ToList();
        if (token is not null || items.Count != 1 || items[0] is not EventBatch batch)
            return base.ToQueueMessage(streamId, items, token, requestContext);

        var data = new EventData(Encode(batch))
        {
            ContentType = "application/x-ndjson+lz4",
        };
        data.Properties[BatchIdProperty] = batch.BatchId.ToString("D");
        data.Properties[PartitionProperty] = batch.Partition;
        data.Properties[CreatedAtProperty] = EventJson.FormatTimestamp(batch.CreatedAt);
        data.Properties[CountProperty] = batch.Events.Length;
        data.SetStreamNamespaceProperty(streamId.GetNamespace());
        return data;
    }

    protected override IBatchContainer GetBatchContainer(EventHubMessage eventHubMessage)
    {
        if (!eventHubMessage.Properties.TryGetValue(BatchIdProperty, out var id))
            return base.GetBatchContainer(eventHubMessage);
        var batch = Decode(
            eventHubMessage.Payload,
            Guid.Parse(Convert.ToString(id, CultureInfo.InvariantCulture)!),
            Convert.ToInt32(eventHubMessage.Properties[PartitionProperty], CultureInfo.InvariantCulture),
            EventJson.TryParseTimestamp(Convert.ToString(eventHubMessage.Properties[CreatedAtProperty], CultureInfo.InvariantCulture)!, out var created) ? created : DateTimeOffset.MinValue);
        return new KeystoneEventHubBatchContainer(eventHubMessage.StreamId, new EventHubSequenceTokenV2(eventHubMessage.Offset, eventHubMessage.SequenceNumber, 0), batch);
    }

    /// <summary>The partition key for a stream: its key, the Keystone partition number.</summary>
    public override string GetPartitionKey(StreamId streamId) => streamId.GetKeyAsString();

    public static byte[] Encode(EventBatch batch)
    {
        var ndjson = new ArrayBufferWriter<byte>(Math.Max(1, batch.Events.Length * 512));
        EventJson.WriteNdjson(ndjson, batch.Events);
        return Lz4Codec.Compress(ndjson.WrittenSpan);
    }

    public static EventBatch Decode(byte[] body, Guid batchId, int partition, DateTimeOffset createdAt)
    {
        var ndjson = Lz4Codec.Decompress(body, 64 * 1024 * 1024);
        var events = new List<KeystoneEvent>();
        var span = ndjson.AsSpan();
        while (!span.IsEmpty)
        {
            var nl = span.IndexOf((byte)'\n');
            var line = nl < 0 ? span : span[..nl];
            span = nl < 0 ? [] : span[(nl + 1)..];
            if (line.IsEmpty) continue;
            events.Add(EventJson.Parse(line));
        }
        return new EventBatch(batchId, partition, createdAt, [.. events]);
    }
}

/// <summary>One Event Hubs message holding one Keystone batch.</summary>
[GenerateSerializer]
public sealed class KeystoneEventHubBatchContainer(StreamId streamId, EventHubSequenceTokenV2 token, EventBatch batch) : IBatchContainer
{
    [Id(0)] public StreamId StreamId { get; } = streamId;
    [Id(1)] public EventHubSequenceTokenV2 Token { get; } = token;
    [Id(2)] public EventBatch Batch { get; } = batch;

    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() =>
        Batch is T item ? [Tuple.Create(item, (StreamSequenceToken)Token)] : [];

    public bool ImportRequestContext() => false;
}
