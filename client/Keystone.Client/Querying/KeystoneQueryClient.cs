using Keystone.Aggregation;
using Keystone.Graph;
using Keystone.Ads;
using Keystone.Topics;
using Keystone.Events;

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

    /// <summary>The silos in the membership table and where each partition's router and operators run.</summary>
    public Task<ClusterView> GetClusterAsync() => grains.GetClusterAsync(Partitions);

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
            priority,
            LatencySnapshot.Merge(stats.Select(s => s.RecentLag ?? LatencySnapshot.Empty)));
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

    /// <summary>A user's windows overlapping [from, to) (all kept windows when both are null), current session and
    /// totals; null when the user has no activity.</summary>
    public Task<UserActivityView?> GetUserActivityAsync(string userId, DateTimeOffset? from = null, DateTimeOffset? to = null)
    {
        CheckId(userId, nameof(userId));
        if (from is not null && to is not null && from >= to) throw new ArgumentException($"'from' ({from:O}) must be earlier than 'to' ({to:O}).", nameof(from));
        return grains.GetGrain<IUserGrain>(userId).GetActivity(from, to);
    }

    /// <summary>A title's per-window and all-time statistics; null when nothing is known about it.</summary>
    public Task<VideoStatsView?> GetVideoStatsAsync(string videoId)
    {
        CheckId(videoId, nameof(videoId));
        return grains.GetGrain<IVideoGrain>(videoId).GetStats();
    }

    /// <summary>A profile's activity and top genres; null when the profile has no activity.</summary>
    public Task<ProfileView?> GetProfileAsync(string profileId)
    {
        CheckId(profileId, nameof(profileId));
        return grains.GetGrain<IProfileGrain>(profileId).GetProfile();
    }

    /// <summary>Every window operator's watermark, checkpoint and counters, in partition order.</summary>
    public async Task<IReadOnlyList<OperatorStats>> GetOperatorsAsync() =>
        await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => grains.GetGrain<IActivityOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    /// <summary>A campaign's totals, rates, budget and invalid traffic; null when it has neither settings nor events.</summary>
    public Task<CampaignView?> GetCampaignAsync(string campaignId)
    {
        CheckId(campaignId, nameof(campaignId));
        return grains.GetGrain<IAdCampaignGrain>(campaignId).GetCampaign();
    }

    /// <summary>Every figure per 1-minute (or, with <paramref name="hourly"/>, 1-hour) window.</summary>
    public Task<AdSeriesView?> GetCampaignSeriesAsync(string campaignId, bool hourly = false)
    {
        CheckId(campaignId, nameof(campaignId));
        return grains.GetGrain<IAdCampaignGrain>(campaignId).GetSeries(hourly);
    }

    /// <summary>Creates or updates a campaign's name, budget and frequency cap (checked here, with the REST rules).</summary>
    public Task<CampaignView> ConfigureCampaignAsync(string campaignId, CampaignSettings settings)
    {
        CheckId(campaignId, nameof(campaignId));
        ArgumentNullException.ThrowIfNull(settings);
        if (CampaignSettingsRules.Problems(settings).ToList() is { Count: > 0 } problems) throw new ArgumentException(string.Join("; ", problems), nameof(settings));
        return grains.GetGrain<IAdCampaignGrain>(campaignId).Configure(settings);
    }

    /// <summary>May the campaign be shown to the profile now? Null when the campaign is unknown.</summary>
    public Task<EligibilityView?> CheckEligibilityAsync(string campaignId, string profileId)
    {
        CheckId(campaignId, nameof(campaignId));
        CheckId(profileId, nameof(profileId));
        return grains.GetGrain<IAdCampaignGrain>(campaignId).CheckEligibility(profileId);
    }

    /// <summary>Every ad operator's log position, counters and publish-to-counted latency per event type.</summary>
    public async Task<IReadOnlyList<AdsOperatorStats>> GetAdsOperatorsAsync() =>
        await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => grains.GetGrain<IAdsOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    /// <summary>A graph node's properties and degrees; null when the graph has never seen it.</summary>
    public Task<GraphNodeView?> GetGraphNodeAsync(NodeType type, string id)
    {
        CheckId(id, nameof(id));
        return grains.GetGrain<IGraphQueryGrain>(0).GetNode(type, id);
    }

    /// <summary>One hop, paged: pass <see cref="EdgePage.NextCursor"/> back as <paramref name="cursor"/>. Null when the node is unknown.</summary>
    public Task<EdgePage?> GetGraphEdgesAsync(NodeType type, string id, EdgeLabel? label = null, EdgeDirection direction = EdgeDirection.Out, int limit = 20, string? cursor = null)
    {
        CheckId(id, nameof(id));
        if (label is { } l && GraphSchema.LabelProblem(type, direction, l) is { } wrong) throw new ArgumentException(wrong, nameof(label));
        return grains.GetGrain<IGraphQueryGrain>(0).GetEdges(type, id, new EdgeQuery(label, direction, limit, cursor));
    }

    /// <summary>Titles watched by users who watched what this user watched (two hops, bounded); null when the user is unknown.</summary>
    public Task<TraversalResult?> GetAlsoWatchedAsync(string userId, int limit = 10)
    {
        CheckId(userId, nameof(userId));
        return grains.GetGrain<IGraphQueryGrain>(0).AlsoWatched(userId, limit);
    }

    /// <summary>Unplayed titles of the profile's preferred genres, ranked; null when the profile is unknown.</summary>
    public Task<TraversalResult?> GetRecommendationsAsync(string profileId, int limit = 10)
    {
        CheckId(profileId, nameof(profileId));
        return grains.GetGrain<IGraphQueryGrain>(0).Recommendations(profileId, limit);
    }

    /// <summary>Every graph operator's log position and counters, in partition order.</summary>
    public async Task<IReadOnlyList<GraphOperatorStats>> GetGraphOperatorsAsync() =>
        await Task.WhenAll(Enumerable.Range(0, Partitions).Select(p => grains.GetGrain<IGraphOperatorGrain>(StreamNames.PartitionKey(p)).GetStats()));

    // The same rule as the REST routes: ids end up in blob names.
    private static void CheckId(string id, string name)
    {
        ArgumentNullException.ThrowIfNull(id, name);
        if (EntityIds.Problem(id, name) is { } problem) throw new ArgumentException(problem + ".", name);
    }

    private ITopicTapGrain Tap(string topic, int partition) => grains.GetGrain<ITopicTapGrain>($"{topic}/{partition}");
}
