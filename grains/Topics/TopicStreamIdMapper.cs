using Orleans.Metadata;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Topics;

/// <summary>
/// Gives each (topic, partition) stream its own tap activation, keyed "topic/partition". The default mapper keys
/// implicit subscribers by the stream key alone, which would make partition 0 of every topic share one grain.
/// </summary>
public sealed class TopicStreamIdMapper : IStreamIdMapper
{
    public const string Name = "keystone-topic";

    public IdSpan GetGrainKeyId(GrainBindings grainBindings, StreamId streamId) =>
        IdSpan.Create(TapKey(streamId.GetNamespace() ?? "", streamId.GetKeyAsString()));

    public static string TapKey(string topic, string partitionKey) => $"{topic}/{partitionKey}";

    public static string TapKey(string topic, int partition) => TapKey(topic, StreamNames.PartitionKey(partition));
}
