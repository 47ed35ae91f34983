using Keystone.Client.Querying;
using Keystone.Events;
using Keystone.Silo.Hosting;
using Keystone.Topics;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

/// <summary>A topic over all its partitions. <c>lag_*</c> since its taps started (a silo's start-up included); <c>recent_lag_*</c>
/// over the last 30 to 60 seconds (0 when nothing was delivered in them).</summary>
public sealed record TopicView(string Name, string? Priority, long Delivered, long Duplicates, DateTimeOffset? LastDeliveryAt, double LagP50Ms, double LagP99Ms, double LagMaxMs,
    double RecentLagP50Ms, double RecentLagP99Ms, double RecentLagMaxMs);

public sealed record TappedEventView(long Sequence, DateTimeOffset DeliveredAt, int Partition, KeystoneEvent Event);

public sealed record TopicEventsView(string Topic, int Count, IReadOnlyList<TappedEventView> Events);

/// <summary>Topic taps: what each target topic received, and its newest events as delivered (after transforms).</summary>
internal static class TopicsEndpoints
{
    public static void MapTopics(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/topics").WithTags("Topics").RequireAuthorization(ScopePolicies.Read);
        group.MapGet("/", ListTopics).WithName("ListTopics")
          .WithSummary("Every topic with its delivered count, last delivery time and lag (delivery time minus event time)");
        group.MapGet("/{name}", GetTopic).WithName("GetTopic");
        group.MapGet("/{name}/events", GetTopicEvents).WithName("GetTopicEvents")
          .WithSummary("The newest events delivered to a topic, newest first, as delivered (transforms applied)");
    }

    internal static async Task<Ok<TopicView[]>> ListTopics(IClusterClient cluster)
    {
        var client = await KeystoneQueryClient.ConnectAsync(cluster);
        var topics = await client.GetTopicsAsync();
        return TypedResults.Ok(topics.Select(ToView).ToArray());
    }

    internal static async Task<Results<Ok<TopicView>, BadRequestProblem, NotFoundProblem>> GetTopic(string name, IClusterClient cluster)
    {
        var (client, bad, missing) = await Resolve(name, cluster);
        if (bad is not null) return bad;
        if (missing is not null) return missing;
        var topics = await cluster.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
        return TypedResults.Ok(ToView(await client!.GetTopicAsync(name, topics.GetValueOrDefault(name))));
    }

    internal static async Task<Results<Ok<TopicEventsView>, BadRequestProblem, NotFoundProblem>> GetTopicEvents(string name, HttpRequest request, IClusterClient cluster)
    {
        if (!Problems.TryInt(request, "limit", 1, 1000, 20, out var limit, out var badLimit)) return badLimit!;
        var (client, bad, missing) = await Resolve(name, cluster);
        if (bad is not null) return bad;
        if (missing is not null) return missing;
        var events = await client!.GetRecentAsync(name, limit);
        return TypedResults.Ok(new TopicEventsView(name, events.Count, events.Reverse().Select(e => new TappedEventView(e.Sequence, e.DeliveredAt, e.Partition, e.Event)).ToArray()));
    }

    private static async Task<(KeystoneQueryClient?, BadRequestProblem?, NotFoundProblem?)> Resolve(string name, IClusterClient cluster)
    {
        if (!StreamNames.IsValidTopicName(name))
            return (null, Problems.BadRequest($"'{Truncate(name)}' is not a valid topic name (3-63 characters of a-z, 0-9, '.', '-', '_')"), null);
        var topics = await cluster.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
        if (!topics.ContainsKey(name))
            return (null, null, Problems.NotFound($"unknown topic '{name}'; GET /v1/topics lists the known topics"));
        return (await KeystoneQueryClient.ConnectAsync(cluster), null, null);
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..61] + "...";

    private static TopicView ToView(TopicSummary t) =>
        new(t.Name, t.Priority, t.Delivered, t.Duplicates, t.LastDeliveryAt, Math.Round(t.Lag.Percentile(0.5), 2), Math.Round(t.Lag.Percentile(0.99), 2), Math.Round(t.Lag.MaxMillis, 2),
            Math.Round(t.RecentLag?.Percentile(0.5) ?? 0, 2), Math.Round(t.RecentLag?.Percentile(0.99) ?? 0, 2), Math.Round(t.RecentLag?.MaxMillis ?? 0, 2));
}
