using Azure.Messaging.EventHubs;
using Azure.Messaging.EventHubs.Consumer;
using Azure.Messaging.EventHubs.Primitives;
using Azure.Messaging.EventHubs.Producer;
using Keystone.Checkpointing;

namespace Keystone.Silo.Streaming;

/// <summary>
/// <see cref="IEventHubPartitions"/> on the Azure SDK: a producer client for sends and partition properties, and a
/// partition receiver per replay read (replays are rare: a restart, or a gap in the stream). Not run on this machine
/// (no Event Hubs namespace or emulator here); the logic above it is unit-tested on an in-memory hub.
/// </summary>
public sealed class AzureEventHubPartitions(string connectionString, string hub, string consumerGroup) : IEventHubPartitions, IAsyncDisposable
{
    /// <summary>How long a replay read waits for events before taking the partition's end as reached.</summary>
    private static readonly TimeSpan ReadWait = TimeSpan.FromSeconds(2);

    private readonly EventHubProducerClient _producer = new(connectionString, hub);

    public string Hub => hub;

    public async Task<IReadOnlyList<string>> GetPartitionIdsAsync(CancellationToken cancellationToken) =>
        await _producer.GetPartitionIdsAsync(cancellationToken);

    public async Task<EventHubPartitionState> GetPartitionStateAsync(string partitionId, CancellationToken cancellationToken)
    {
        var p = await _producer.GetPartitionPropertiesAsync(partitionId, cancellationToken);
        return new(p.BeginningSequenceNumber, p.LastEnqueuedSequenceNumber, p.IsEmpty);
    }

    public async Task<int> SendAsync(string partitionId, IReadOnlyList<byte[]> bodies, CancellationToken cancellationToken)
    {
        using var batch = await _producer.CreateBatchAsync(new CreateBatchOptions { PartitionId = partitionId }, cancellationToken);
        foreach (var body in bodies)
            if (!batch.TryAdd(new EventData(body))) break;
        if (batch.Count == 0)
            throw new InvalidOperationException(
                $"a fronting message of {bodies[0].Length} bytes does not fit one event of Event Hub '{hub}' ({batch.MaximumSizeInBytes} bytes); lower Keystone:Ingest:MaxRequestBytes");
        await _producer.SendAsync(batch, cancellationToken);
        return batch.Count;
    }

    public async Task<IReadOnlyList<EventHubRecord>> ReadAsync(string partitionId, long fromSequenceNumber, int maxCount, CancellationToken cancellationToken)
    {
        await using var receiver = new PartitionReceiver(consumerGroup, partitionId, EventPosition.FromSequenceNumber(fromSequenceNumber, isInclusive: true), connectionString, hub);
        var records = new List<EventHubRecord>(maxCount);
        while (records.Count < maxCount)
        {
            var received = await receiver.ReceiveBatchAsync(maxCount - records.Count, ReadWait, cancellationToken);
            var before = records.Count;
            foreach (var e in received) records.Add(new EventHubRecord(e.SequenceNumber, e.EventBody.ToArray()));
            if (records.Count == before) break;
        }
        return records;
    }

    public ValueTask DisposeAsync() => _producer.DisposeAsync();
}
