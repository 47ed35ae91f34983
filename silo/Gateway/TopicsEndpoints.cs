using Keystone.Client.Querying;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.Silo.Gateway;

public sealed record TopicView(string Name, string? Priority, long Delivered, long Duplicates, DateTimeOffset? LastDeliveryAt, double LagP50Ms, double LagP99Ms, double LagMaxMs);

public sealed record TappedEventView(long Sequence, DateTimeOffset DeliveredAt, int Partition, KeystoneEvent Event);

public sealed record TopicEventsView(string Topic, int Count, IReadOnlyList<TappedEventView> Events);

/// <summary>Topic taps: what each target topic received, and its newest events as delivered (after transforms).</summary>
internal static class TopicsEndpoints
{
    public static void MapTopics(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/topics").WithTags("Topics");

        group.MapGet("/", async (IClusterClient cluster) =>
        {
            var client = await KeystoneQueryClient.ConnectAsync(cluster);
            var topics = await client.GetTopicsAsync();
            return Results.Ok(topics.Select(ToView).ToArray());
        })
        .WithName("ListTopics")
        .WithSummary("Every topic with its delivered count, last delivery time and lag (delivery time minus event time)")
        .Produces<TopicView[]>();

        group.MapGet("/{name}", async (string name, IClusterClient cluster) =>
        {
            var (client, problem) = await Resolve(name, cluster);
            if (problem is not null) return problem;
            var topics = await cluster.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
            return Results.Ok(ToView(await client!.GetTopicAsync(name, topics.GetValueOrDefault(name))));
        })
        .WithName("GetTopic")
        .Produces<TopicView>()
        .ProducesProblem(StatusCodes.Status404NotFound);

        group.MapGet("/{name}/events", async (string name, HttpRequest request, IClusterClient cluster) =>
        {
            if (!Problems.TryInt(request, "limit", 1, 1000, 20, out var limit, out var bad)) return bad!;
            var (client, problem) = await Resolve(name, cluster);
            if (problem is not null) return problem;
            var events = await client!.GetRecentAsync(name, limit);
            return Results.Ok(new TopicEventsView(name, events.Count, events.Reverse().Select(e => new TappedEventView(e.Sequence, e.DeliveredAt, e.Partition, e.Event)).ToArray()));
        })
        .WithName("GetTopicEvents")
        .WithSummary("The newest events delivered to a topic, newest first, as delivered (transforms applied)")
        .Produces<TopicEventsView>()
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static async Task<(KeystoneQueryClient?, IResult?)> Resolve(string name, IClusterClient cluster)
    {
        if (!StreamNames.IsValidTopicName(name))
            return (null, Problems.BadRequest($"'{Truncate(name)}' is not a valid topic name (3-63 characters of a-z, 0-9, '.', '-', '_')"));
        var topics = await cluster.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
        if (!topics.ContainsKey(name))
            return (null, Problems.NotFound($"unknown topic '{name}'; GET /v1/topics lists the known topics"));
        return (await KeystoneQueryClient.ConnectAsync(cluster), null);
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..61] + "...";

    private static TopicView ToView(TopicSummary t) =>
        new(t.Name, t.Priority, t.Delivered, t.Duplicates, t.LastDeliveryAt, Math.Round(t.Lag.Percentile(0.5), 2), Math.Round(t.Lag.Percentile(0.99), 2), Math.Round(t.Lag.MaxMillis, 2));
}
