using Keystone.Archive;
using Keystone.Events;
using Keystone.Silo.Hosting;
using Keystone.Topics;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record ArchiveReplayBody(string From, string To, string? Type, string? ToTopic);

/// <summary>The data-lake archive: what was written, and replay by time range.</summary>
internal static class ArchiveEndpoints
{
    public static void MapArchive(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/archive").WithTags("Archive").RequireAuthorization(ScopePolicies.Read);
        group.MapGet("/blobs", GetArchiveBlobs).WithName("GetArchiveBlobs")
          .WithSummary("Archive blobs of the last two days with their event counts (as in the manifests)");
        group.MapPost("/replay", ReplayArchive).WithName("ReplayArchive").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Re-reads the archive for an event-time range and publishes the events again: into the pipeline (validated, routed, de-duplicated by event id) or into one topic");
    }

    internal static async Task<Ok<ArchiveBlob[]>> GetArchiveBlobs(IClusterClient cluster)
    {
        var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
        var blobs = await Task.WhenAll(Enumerable.Range(0, info.Partitions).Select(p => cluster.GetGrain<IArchiveWriterGrain>(StreamNames.PartitionKey(p)).GetBlobs()));
        return TypedResults.Ok(blobs.SelectMany(b => b).OrderBy(b => b.Name, StringComparer.Ordinal).ToArray());
    }

    internal static async Task<Results<Ok<ArchiveReplayResult>, BadRequestProblem>> ReplayArchive(ArchiveReplayBody? body, IClusterClient cluster)
    {
        if (body is null) return Problems.BadRequest("body must be a JSON object: { \"from\": \"...\", \"to\": \"...\", \"type\": null, \"to_topic\": null }");
        if (!EventJson.TryParseTimestamp(body.From ?? "", out var from)) return Problems.BadRequest($"from: must be an ISO-8601 date-time with an offset, got '{body.From}'");
        if (!EventJson.TryParseTimestamp(body.To ?? "", out var to)) return Problems.BadRequest($"to: must be an ISO-8601 date-time with an offset, got '{body.To}'");
        if (to <= from) return Problems.BadRequest("to: must be later than from");
        if (body.ToTopic is { } topic && !StreamNames.IsValidTopicName(topic)) return Problems.BadRequest($"to_topic: '{topic}' is not a valid topic name");
        try
        {
            return TypedResults.Ok(await cluster.GetGrain<IArchiveReplayGrain>(0).Replay(new ArchiveReplayRequest(from, to, body.Type, body.ToTopic)));
        }
        catch (ArgumentException e)
        {
            return Problems.BadRequest(e.Message);
        }
    }
}
