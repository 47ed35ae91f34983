using Keystone.Operations;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record BulkReplayView(int Replayed, int AlreadyReplayed, int RejectedAgain, IReadOnlyList<ReplayResult> Results, string? Cursor);

/// <summary>The dead-letter store: list and read what was refused or failed, and replay it.</summary>
internal static class DeadLetterEndpoints
{
    public static void MapDeadLetters(this IEndpointRouteBuilder app)
    {
        // Dead letters hold events as they arrived, personal data included: admin only, reads too.
        var group = app.MapGroup("/v1/dead-letters").WithTags("Dead letters").RequireAuthorization(ScopePolicies.Admin);
        group.MapGet("/", ListDeadLetters).WithName("ListDeadLetters").WithSummary("Dead letters, oldest first, by stage and event type; page with the returned cursor");
        group.MapGet("/{id}", GetDeadLetter).WithName("GetDeadLetter");
        group.MapPost("/{id}/replay", ReplayDeadLetter).WithName("ReplayDeadLetter")
          .WithSummary("Publishes the event again: through ingest (validated again) when ingest refused it, into the failed consumer's topic otherwise; a second replay publishes nothing");
        group.MapPost("/replay", ReplayDeadLetters).WithName("ReplayDeadLetters")
          .WithSummary("Replays every dead letter matching stage and type (up to limit, from cursor); idempotent");
    }

    internal static async Task<Results<Ok<DeadLetterPage>, BadRequestProblem>> ListDeadLetters(HttpRequest request, IClusterClient cluster)
    {
        if (!TryFilter(request, 100, out var stage, out var type, out var limit, out var cursor, out var problem)) return problem!;
        return TypedResults.Ok(await cluster.GetGrain<IDeadLetterGrain>(0).List(stage, type, limit, cursor));
    }

    internal static async Task<Results<Ok<DeadLetter>, BadRequestProblem, NotFoundProblem>> GetDeadLetter(string id, IClusterClient cluster)
    {
        if (DeadLetterStore.StageOf(id) is null) return Problems.BadRequest($"'{Short(id)}' is not a dead-letter id (stage.timestamp-suffix)");
        var letter = await cluster.GetGrain<IDeadLetterGrain>(0).Get(id);
        return letter is null ? Problems.NotFound($"no dead letter '{id}'") : TypedResults.Ok(letter);
    }

    internal static async Task<Results<Ok<ReplayResult>, UnprocessableEntity<ReplayResult>, BadRequestProblem, NotFoundProblem>> ReplayDeadLetter(string id, IClusterClient cluster)
    {
        if (DeadLetterStore.StageOf(id) is null) return Problems.BadRequest($"'{Short(id)}' is not a dead-letter id (stage.timestamp-suffix)");
        var result = await cluster.GetGrain<IDeadLetterReplayGrain>(id).Replay();
        return result.Outcome switch
        {
            ReplayOutcome.NotFound => Problems.NotFound($"no dead letter '{id}'"),
            ReplayOutcome.RejectedAgain => TypedResults.UnprocessableEntity(result),
            _ => TypedResults.Ok(result),
        };
    }

    internal static async Task<Results<Ok<BulkReplayView>, BadRequestProblem>> ReplayDeadLetters(HttpRequest request, IClusterClient cluster)
    {
        if (!TryFilter(request, 1_000, out var stage, out var type, out var limit, out var cursor, out var problem)) return problem!;
        var page = await cluster.GetGrain<IDeadLetterGrain>(0).List(stage, type, limit, cursor);
        var results = new List<ReplayResult>();
        foreach (var letter in page.Items.Where(l => l.ReplayedAt is null))
            results.Add(await cluster.GetGrain<IDeadLetterReplayGrain>(letter.Id).Replay());
        var already = page.Items.Count(l => l.ReplayedAt is not null) + results.Count(r => r.Outcome == ReplayOutcome.AlreadyReplayed);
        return TypedResults.Ok(new BulkReplayView(results.Count(r => r.Outcome == ReplayOutcome.Replayed), already,
            results.Count(r => r.Outcome == ReplayOutcome.RejectedAgain), results, page.Cursor));
    }

    private static bool TryFilter(HttpRequest request, int fallbackLimit, out string? stage, out string? type, out int limit, out string? cursor, out BadRequestProblem? problem)
    {
        stage = request.Query["stage"].FirstOrDefault();
        type = request.Query["type"].FirstOrDefault();
        cursor = request.Query["cursor"].FirstOrDefault();
        limit = fallbackLimit;
        if (stage is not null && (stage.Length is 0 or > 32 || !stage.All(char.IsAsciiLetterLower)))
        {
            problem = Problems.BadRequest($"query parameter 'stage' must be a lower-case word such as 'ingest', got '{Short(stage)}'");
            return false;
        }
        if (type is not null && (type.Length is 0 or > 128))
        {
            problem = Problems.BadRequest("query parameter 'type' must be 1 to 128 characters long");
            return false;
        }
        if (cursor is not null && cursor.Length > 2_048)
        {
            problem = Problems.BadRequest("query parameter 'cursor' is too long; pass the cursor a previous page returned");
            return false;
        }
        return Problems.TryInt(request, "limit", 1, 1_000, fallbackLimit, out limit, out problem);
    }

    private static string Short(string s) => s.Length <= 64 ? s : s[..61] + "...";
}
