using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Topics;

/// <summary>Publishes events straight into a topic, on the partition each event's key gives (the routers' own choice),
/// bypassing ingest and routing: for replays whose events the routers would recognise as already seen.</summary>
public static class TopicPublisher
{
    public static async Task PublishAsync(IStreamProvider provider, IGrainFactory grains, IngestOptions ingest, string topic, string priority, IReadOnlyList<KeystoneEvent> events)
    {
        await grains.GetGrain<ITopicDirectoryGrain>(0).Register(topic, priority);
        foreach (var group in events.GroupBy(e => Partitioning.PartitionOf(e, ingest.Partitions)))
        {
            var stream = provider.GetStream<EventBatch>(StreamId.Create(topic, StreamNames.PartitionKey(group.Key)));
            foreach (var chunk in StreamChunker.Chunk(group.Select(e => new BatchItem(e)).ToList(), ingest.MaxEventsPerStreamMessage, ingest.MaxBytesPerStreamMessage))
                await stream.OnNextAsync(EventBatch.Compose(Guid.NewGuid(), group.Key, DateTimeOffset.UtcNow, chunk));
        }
    }
}
