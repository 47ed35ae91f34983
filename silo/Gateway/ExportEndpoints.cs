using System.Globalization;
using Keystone.Ads;
using Keystone.Checkpointing;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

public sealed record ExportListing(string Sink, DateTimeOffset From, DateTimeOffset To, IReadOnlyList<ExportFile> Files);

/// <summary>The committed exports (billing, fraud alerts): list a period's files, read one.</summary>
internal static class ExportEndpoints
{
    public static readonly IReadOnlyList<string> Sinks = [AdExports.Billing, AdExports.FraudAlerts];

    public static void MapExports(this IEndpointRouteBuilder app)
    {
        // Records carry profile and device ids, and billing is what money depends on: admin only, reads too.
        var group = app.MapGroup("/v1/exports").WithTags("Exports").RequireAuthorization(ScopePolicies.Admin);
        group.MapGet("/{sink}", ListExportFiles).WithName("ListExportFiles")
          .WithSummary("A sink's files committed in [from, to) (default: the last hour), in commit order per hour; each holds one checkpoint of one partition");
        group.MapGet("/files/{**name}", GetExportFile).WithName("GetExportFile")
          .WithSummary("One committed file, as JSON lines; every record has an id derived from its sink and event");
    }

    internal static async Task<Results<Ok<ExportListing>, BadRequestProblem, NotFoundProblem>> ListExportFiles(string sink, HttpRequest request, IClusterClient cluster, TimeProvider time)
    {
        if (!Sinks.Contains(sink)) return Problems.NotFound($"no export '{sink}'; the exports are {string.Join(", ", Sinks)}");
        var now = time.GetUtcNow();
        if (!TryTime(request, "to", now, out var to, out var problem) || !TryTime(request, "from", to.AddHours(-1), out var from, out problem)) return problem!;
        if (from >= to) return Problems.BadRequest($"'from' ({from:O}) must be before 'to' ({to:O})");
        if (to - from > TimeSpan.FromHours(ExportStore.MaxHoursPerListing)) return Problems.BadRequest($"a listing spans at most {ExportStore.MaxHoursPerListing} hours; page with 'from' and 'to'");
        if (!Problems.TryInt(request, "limit", 1, 10_000, 1_000, out var limit, out problem)) return problem!;
        if (!Problems.TryInt(request, "partition", -1, 4_095, -1, out var partition, out problem)) return problem!;
        var files = await cluster.GetGrain<IExportReaderGrain>(0).List(sink, from, to, partition < 0 ? null : partition, limit);
        return TypedResults.Ok(new ExportListing(sink, from, to, files));
    }

    internal static async Task<Results<FileContentHttpResult, BadRequestProblem, NotFoundProblem>> GetExportFile(string name, IClusterClient cluster)
    {
        if (ExportStore.Parse(name) is not { } parsed || !Sinks.Contains(parsed.Sink))
            return Problems.BadRequest($"'{(name.Length > 120 ? name[..120] + "…" : name)}' is not an export file name ({{sink}}/{{yyyy-MM-dd}}/{{HH}}/{{yyyyMMddTHHmmssfffffff}}Z-p{{partition}}.jsonl)");
        var content = await cluster.GetGrain<IExportReaderGrain>(0).Read(name);
        return content is null ? Problems.NotFound($"no export file '{name}'") : TypedResults.File(content, "application/x-ndjson");
    }

    private static bool TryTime(HttpRequest request, string name, DateTimeOffset fallback, out DateTimeOffset value, out BadRequestProblem? problem)
    {
        value = fallback;
        problem = null;
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) return true;
        if (raw.Count > 1 || !DateTimeOffset.TryParse(raw[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out value))
        {
            problem = Problems.BadRequest($"query parameter '{name}' must be one ISO 8601 time (e.g. 2026-12-04T13:00:00Z), got '{raw}'");
            return false;
        }
        return true;
    }
}
