using Keystone.Topics;

namespace Keystone.Client.Querying;

/// <summary>Typed reads of what the pipeline holds, for services that use the Orleans client rather than REST.</summary>
public sealed class KeystoneQueryClient(IGrainFactory grains, int partitions)
{
    public int Partitions { get; } = partitions;

    /// <summary>Asks the cluster how many partitions it runs with and returns a client for it.</summary>
    public static async Task<KeystoneQueryClient> ConnectAsync(IGrainFactory grains)
    {
        var info = await grains.GetGrain<IPipelineInfoGrain>(0).GetInfo();
        return new KeystoneQueryClient(grains, info.Partitions);
    }

    public Task<PipelineInfo> GetInfoAsync() => grains.GetGrain<IPipelineInfoGrain>(0).GetInfo();

    /// <summary>Every known topic, summed over its partitions.</summary>
    public async Task<IReadOnlyList<TopicSummary>> GetTopicsAsync()
    {
        var topics = await grains.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
        var summaries = await Task.WhenAll(topics.Select(t => GetTopicAsync(t.Key, t.Value)));
        return summaries;
    }

    public async Task<TopicSummary> GetTopicAsync(string topic, string? priority = null)
    {
        var stats = await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => Tap(topic, p).GetStats()));
        return new TopicSummary(
            topic,
            stats.Sum(s => s.Delivered),
            stats.Sum(s => s.Duplicates),
            stats.Max(s => s.LastDeliveryAt),
            LatencySnapshot.Merge(stats.Select(s => s.Lag)),
            priority);
    }

    /// <summary>The newest <paramref name="limit"/> events delivered to a topic, newest last, over all partitions.</summary>
    public async Task<IReadOnlyList<TappedEvent>> GetRecentAsync(string topic, int limit)
    {
        var perPartition = await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => Tap(topic, p).GetRecent(limit)));
        return perPartition.SelectMany(x => x).OrderBy(e => e.DeliveredAt).ThenBy(e => e.Partition).ThenBy(e => e.Sequence).TakeLast(limit).ToArray();
    }

    /// <summary>Events delivered to one partition of a topic after <paramref name="afterSequence"/> (for tailing).</summary>
    public Task<IReadOnlyList<TappedEvent>> GetAfterAsync(string topic, int partition, long afterSequence, int limit) =>
        Tap(topic, partition).GetRecent(limit, afterSequence);

    public Task ResetTopicAsync(string topic) =>
        Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => Tap(topic, p).Reset()));

    private ITopicTapGrain Tap(string topic, int partition) => grains.GetGrain<ITopicTapGrain>($"{topic}/{partition}");
}
