using Keystone.Client.Querying;
using System.Text.Json;
using Keystone.Archive;
using Keystone.Checkpointing;
using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Schemas;
using Keystone.Silo.Hosting;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Gateway;

public sealed record SchemaTypeView(string EventType, IReadOnlyList<string> Versions, string? Description);

/// <param name="Version">The live rules' version; null while the rule file is in force.</param>
public sealed record RulesView(string Hash, string Origin, int Rules, string Text, int? Version);

/// <param name="Warnings">Operators this rule set would leave without input (PUT refuses such a set unless allow_idle=true).</param>
public sealed record RulesValidation(bool Valid, int Rules, IReadOnlyList<string> Topics, IReadOnlyList<string> Warnings);

/// <summary><paramref name="StorageRequests"/>: what this silo sent to Azure Storage since it started, by operation;
/// <paramref name="SnapshotReads"/>: of those, the ranged reads of grain state, by state name;
/// <paramref name="SnapshotSegments"/>: what this silo's snapshot buckets did to keep their blobs few.</summary>
public sealed record StatsView(PipelineInfo Pipeline, IReadOnlyList<RouterStats> Routers, PipelineTotals? ThisSilo, IReadOnlyDictionary<string, long>? StorageRequests,
    string? SiloAddress = null, ClusterView? Cluster = null, IReadOnlyDictionary<string, long>? SnapshotReads = null, SnapshotSegmentsView? SnapshotSegments = null,
    LakeSealsView? LakeSeals = null);

/// <summary>Fronting log segments this silo wrote to the lake (where the lake is the sealed log), their events and
/// compressed bytes, seals that failed and wait for the next try, and segments its writers found in the lake already
/// as they opened (a restart does not seal them again).</summary>
public sealed record LakeSealsView(long Segments, long Events, long Bytes, long Failures, long AlreadySealed = 0);

/// <summary>Compactions (a bucket folded into a new base, and the bytes of state rewritten) and segments deleted
/// because every state in them had been written again since (and the bytes they held), since the silo started; reads
/// answered from the buckets' memory of idle entities; state writes that got no answer, and those of them the writer's
/// next write found durable (see <c>UnansweredWrites</c>).</summary>
public sealed record SnapshotSegmentsView(long Compactions, long CompactedBytes, long DeadDeleted, long DeadBytes, long WarmReads, long WarmBytes, long UnansweredWrites, long UnansweredFoundDurable);

/// <summary>Read-only views of the schema registry, the routing rules and the pipeline, plus rule validation.</summary>
internal static class CatalogEndpoints
{
    private const int MaxSchemaBytes = 256 * 1024;

    public static void MapCatalog(this IEndpointRouteBuilder app)
    {
        var schemas = app.MapGroup("/v1/schemas").WithTags("Schemas").RequireAuthorization(ScopePolicies.Read);
        schemas.MapGet("/", ListSchemas).WithName("ListSchemas").WithSummary("Registered event types and their versions");
        schemas.MapGet("/{type}", GetSchemaVersions).WithName("GetSchemaVersions");
        schemas.MapGet("/{type}/{version}", GetSchema).WithName("GetSchema");
        schemas.MapPost("/{type}/versions", AddSchemaVersion).WithName("AddSchemaVersion").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Adds a schema version, effective on every silo without a restart; it must be backward compatible (only new optional fields)");

        var routing = app.MapGroup("/v1/routing").WithTags("Routing").RequireAuthorization(ScopePolicies.Read);
        routing.MapGet("/rules", GetRoutingRules).WithName("GetRoutingRules")
          .WithSummary("The routing rules in force (the live version if one was applied, else the rule file)");
        // Checking rules changes nothing: a read.
        routing.MapPost("/rules/validate", ValidateRoutingRules).WithName("ValidateRoutingRules")
          .WithSummary("Checks a rule set (YAML or JSON) without applying it; warns of every operator whose input topic no rule would route to")
          .Accepts<string>("application/yaml", "text/yaml", "application/json", "text/plain");

        var pipeline = app.MapGroup("/v1").WithTags("Pipeline").RequireAuthorization(ScopePolicies.Read);
        pipeline.MapGet("/stats", GetStats).WithName("GetStats")
          .WithSummary("Pipeline set-up, per-router counters, this silo's ingest counters and address, the cluster's members and where each partition runs");
        pipeline.MapGet("/cluster", GetCluster).WithName("GetCluster")
          .WithSummary("The silos in the membership table (address, name, status) and the silo each partition's router and operators run on");
        pipeline.MapGet("/checkpoints", GetCheckpoints).WithName("GetCheckpoints")
          .WithSummary("Checkpoint barriers: the newest started and completed, and the fronting position each partition's last completed checkpoint covers");
    }

    internal static async Task<Ok<SchemaTypeView[]>> ListSchemas(IClusterClient cluster)
    {
        var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
        return TypedResults.Ok(all.GroupBy(s => s.EventType)
            .Select(g => new SchemaTypeView(g.Key, g.Select(s => s.Version).Order(VersionComparer.Instance).ToArray(), g.OrderBy(s => s.Version, VersionComparer.Instance).Last().Description))
            .ToArray());
    }

    internal static async Task<Results<Ok<SchemaDescription[]>, NotFoundProblem>> GetSchemaVersions(string type, IClusterClient cluster)
    {
        var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
        var versions = all.Where(s => s.EventType == type).ToArray();
        return versions.Length == 0
            ? Problems.NotFound($"unknown event type '{Short(type)}'; GET /v1/schemas lists the registered types")
            : TypedResults.Ok(versions);
    }

    internal static async Task<Results<Ok<SchemaDescription>, NotFoundProblem>> GetSchema(string type, string version, IClusterClient cluster)
    {
        var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
        var match = all.FirstOrDefault(s => s.EventType == type && s.Version == version);
        return match is null
            ? Problems.NotFound($"no schema '{Short(type)}' version '{Short(version)}'")
            : TypedResults.Ok(match);
    }

    internal static async Task<Results<Created<SchemaDescription>, BadRequestProblem, ConflictProblem, TooLargeProblem>> AddSchemaVersion(string type, HttpRequest request, IClusterClient cluster)
    {
        if (request.ContentLength > MaxSchemaBytes) return Problems.TooLarge($"a schema document is at most {MaxSchemaBytes} bytes");
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(request.Body);
        }
        catch (JsonException e)
        {
            return Problems.BadRequest($"body is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return Problems.BadRequest("body must be a JSON object: { \"version\": \"1.2\", \"schema\": { ...JSON Schema... } }");
            foreach (var p in root.EnumerateObject())
                if (p.Name is not ("version" or "schema")) return Problems.BadRequest($"{p.Name}: unknown field (known: version, schema)");
            if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.String)
                return Problems.BadRequest("version: required, a string such as \"1.2\"");
            if (!root.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
                return Problems.BadRequest("schema: required, a JSON Schema object");
            var result = await cluster.GetGrain<ISchemaCatalogGrain>(0).Add(type, version.GetString()!, schema.GetRawText());
            if (result.Added is { } added) return TypedResults.Created($"/v1/schemas/{added.EventType}/{added.Version}", added);
            var detail = string.Join("; ", result.Problems);
            return result.Conflict
                ? Problems.Conflict(detail)
                : Problems.BadRequest(detail, new Dictionary<string, object?> { ["problems"] = result.Problems });
        }
    }

    internal static async Task<Ok<RulesView>> GetRoutingRules(IClusterClient cluster)
    {
        if (await cluster.GetGrain<IRoutingRulesGrain>(0).GetCurrent() is { } live)
            return TypedResults.Ok(new RulesView(live.Info.Hash, live.Info.Origin, live.Info.RuleCount, live.Text, live.Info.Version));
        var grain = cluster.GetGrain<IPipelineInfoGrain>(0);
        var info = await grain.GetInfo();
        return TypedResults.Ok(new RulesView(info.RulesHash, info.RulesOrigin, info.RuleCount, await grain.GetRulesText(), null));
    }

    internal static async Task<Results<Ok<RulesValidation>, BadRequestProblem, TooLargeProblem>> ValidateRoutingRules(HttpRequest request, SchemaRegistryProvider registry,
        IOptions<RoutingOptions> options, IOptions<ArchiveOptions> archive)
    {
        var (text, tooLarge) = await LiveRulesEndpoints.ReadText(request);
        if (tooLarge is not null) return tooLarge;
        try
        {
            var pii = options.Value.Pii;
            var set = RuleSetParser.Parse(text!, "request", new TransformSettings(pii.Fields, pii.Mode, pii.Salt, registry.Current));
            return TypedResults.Ok(new RulesValidation(true, set.Rules.Count, set.StaticTopics.Keys.Order().ToArray(), OperatorInputs.Unfed(set, OperatorInputs.All(archive.Value.Enabled))));
        }
        catch (RoutingRulesException e)
        {
            return LiveRulesEndpoints.RuleProblem(e);
        }
    }

    internal static async Task<Ok<StatsView>> GetStats(IClusterClient cluster, IServiceProvider services)
    {
        var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
        var routers = await Task.WhenAll(Enumerable.Range(0, info.Partitions).Select(p => cluster.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p)).GetStats()));
        var view = await ClusterQueries.GetClusterAsync(cluster, info.Partitions);
        return TypedResults.Ok(new StatsView(info, routers, services.GetService<PipelineMetrics>()?.Snapshot(), services.GetService<StorageRequests>()?.Snapshot(),
            services.GetService<ILocalSiloDetails>()?.SiloAddress.ToParsableString(), view, services.GetService<SnapshotStore>()?.StateReads(), Segments(services.GetService<SnapshotStore>()),
            services.GetService<Keystone.Archive.SealedLogLake>()?.Sealed is { } sealedLog ? new LakeSealsView(sealedLog.Segments, sealedLog.Events, sealedLog.Bytes, sealedLog.Failures, sealedLog.AlreadySealed) : null));
    }

    private static SnapshotSegmentsView? Segments(SnapshotStore? store) =>
        store is null ? null : new(store.Compactions.Count, store.Compactions.Bytes, store.DeadSegments.Count, store.DeadSegments.Bytes, store.Warm.Reads, store.Warm.Bytes, store.Unanswered.Counts.Unanswered, store.Unanswered.Counts.Recognised);

    internal static async Task<Ok<ClusterView>> GetCluster(IClusterClient cluster)
    {
        var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
        return TypedResults.Ok(await ClusterQueries.GetClusterAsync(cluster, info.Partitions));
    }

    internal static async Task<Ok<CheckpointStatus>> GetCheckpoints(IClusterClient cluster) =>
        TypedResults.Ok(await cluster.GetGrain<ICheckpointCoordinatorGrain>(0).GetStatus());

    private static string Short(string s) => s.Length <= 64 ? s : s[..61] + "...";
}
