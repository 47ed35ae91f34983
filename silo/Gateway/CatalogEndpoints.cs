using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Schemas;
using Keystone.Topics;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Gateway;

public sealed record SchemaTypeView(string EventType, IReadOnlyList<string> Versions, string? Description);

/// <param name="Version">The live rules' version; null while the rule file is in force.</param>
public sealed record RulesView(string Hash, string Origin, int Rules, string Text, int? Version);

public sealed record RulesValidation(bool Valid, int Rules, IReadOnlyList<string> Topics);

/// <summary><paramref name="StorageRequests"/>: what this silo sent to Azure Storage since it started, by operation.</summary>
public sealed record StatsView(PipelineInfo Pipeline, IReadOnlyList<RouterStats> Routers, PipelineTotals? ThisSilo, IReadOnlyDictionary<string, long>? StorageRequests,
    string? SiloAddress = null, Keystone.Client.Querying.ClusterView? Cluster = null);

/// <summary>Read-only views of the schema registry, the routing rules and the pipeline, plus rule validation.</summary>
internal static class CatalogEndpoints
{
    private const int MaxSchemaBytes = 256 * 1024;

    public static void MapCatalog(this IEndpointRouteBuilder app)
    {
        var schemas = app.MapGroup("/v1/schemas").WithTags("Schemas");
        schemas.MapGet("/", async (IClusterClient cluster) =>
        {
            var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
            return Results.Ok(all.GroupBy(s => s.EventType)
                .Select(g => new SchemaTypeView(g.Key, g.Select(s => s.Version).Order(VersionComparer.Instance).ToArray(), g.OrderBy(s => s.Version, VersionComparer.Instance).Last().Description))
                .ToArray());
        }).WithName("ListSchemas").WithSummary("Registered event types and their versions").Produces<SchemaTypeView[]>();

        schemas.MapGet("/{type}", async (string type, IClusterClient cluster) =>
        {
            var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
            var versions = all.Where(s => s.EventType == type).ToArray();
            return versions.Length == 0
                ? Problems.NotFound($"unknown event type '{Short(type)}'; GET /v1/schemas lists the registered types")
                : Results.Ok(versions);
        }).WithName("GetSchemaVersions").Produces<SchemaDescription[]>().ProducesProblem(StatusCodes.Status404NotFound);

        schemas.MapGet("/{type}/{version}", async (string type, string version, IClusterClient cluster) =>
        {
            var all = await cluster.GetGrain<IPipelineInfoGrain>(0).GetSchemas();
            var match = all.FirstOrDefault(s => s.EventType == type && s.Version == version);
            return match is null
                ? Problems.NotFound($"no schema '{Short(type)}' version '{Short(version)}'")
                : Results.Ok(match);
        }).WithName("GetSchema").Produces<SchemaDescription>().ProducesProblem(StatusCodes.Status404NotFound);

        schemas.MapPost("/{type}/versions", async (string type, HttpRequest request, IClusterClient cluster) =>
        {
            if (request.ContentLength > MaxSchemaBytes) return Problems.TooLarge($"a schema document is at most {MaxSchemaBytes} bytes");
            System.Text.Json.JsonDocument doc;
            try
            {
                doc = await System.Text.Json.JsonDocument.ParseAsync(request.Body);
            }
            catch (System.Text.Json.JsonException e)
            {
                return Problems.BadRequest($"body is not valid JSON: {e.Message}");
            }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != System.Text.Json.JsonValueKind.Object) return Problems.BadRequest("body must be a JSON object: { \"version\": \"1.2\", \"schema\": { ...JSON Schema... } }");
                foreach (var p in root.EnumerateObject())
                    if (p.Name is not ("version" or "schema")) return Problems.BadRequest($"{p.Name}: unknown field (known: version, schema)");
                if (!root.TryGetProperty("version", out var version) || version.ValueKind != System.Text.Json.JsonValueKind.String)
                    return Problems.BadRequest("version: required, a string such as \"1.2\"");
                if (!root.TryGetProperty("schema", out var schema) || schema.ValueKind != System.Text.Json.JsonValueKind.Object)
                    return Problems.BadRequest("schema: required, a JSON Schema object");
                var result = await cluster.GetGrain<ISchemaCatalogGrain>(0).Add(type, version.GetString()!, schema.GetRawText());
                if (result.Added is { } added) return Results.Created($"/v1/schemas/{added.EventType}/{added.Version}", added);
                var detail = string.Join("; ", result.Problems);
                return result.Conflict
                    ? Results.Problem(detail: detail, statusCode: StatusCodes.Status409Conflict, title: "Conflict", extensions: new Dictionary<string, object?> { ["error"] = detail })
                    : Problems.BadRequest(detail, new Dictionary<string, object?> { ["problems"] = result.Problems });
            }
        }).WithName("AddSchemaVersion")
          .WithSummary("Adds a schema version, effective on every silo without a restart; it must be backward compatible (only new optional fields)")
          .Produces<SchemaDescription>(StatusCodes.Status201Created)
          .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        var routing = app.MapGroup("/v1/routing").WithTags("Routing");
        routing.MapGet("/rules", async (IClusterClient cluster) =>
        {
            if (await cluster.GetGrain<IRoutingRulesGrain>(0).GetCurrent() is { } live)
                return Results.Ok(new RulesView(live.Info.Hash, live.Info.Origin, live.Info.RuleCount, live.Text, live.Info.Version));
            var grain = cluster.GetGrain<IPipelineInfoGrain>(0);
            var info = await grain.GetInfo();
            return Results.Ok(new RulesView(info.RulesHash, info.RulesOrigin, info.RuleCount, await grain.GetRulesText(), null));
        }).WithName("GetRoutingRules").WithSummary("The routing rules in force (the live version if one was applied, else the rule file)").Produces<RulesView>();

        routing.MapPost("/rules/validate", async (HttpRequest request, SchemaRegistryProvider registry, IOptions<RoutingOptions> options) =>
        {
            var (text, tooLarge) = await LiveRulesEndpoints.ReadText(request);
            if (tooLarge is not null) return tooLarge;
            try
            {
                var pii = options.Value.Pii;
                var set = RuleSetParser.Parse(text!, "request", new TransformSettings(pii.Fields, pii.Mode, pii.Salt, registry.Current));
                return Results.Ok(new RulesValidation(true, set.Rules.Count, set.StaticTopics.Keys.Order().ToArray()));
            }
            catch (RoutingRulesException e)
            {
                return Problems.BadRequest(e.Message, new Dictionary<string, object?> { ["line"] = e.Line, ["column"] = e.Column, ["rule"] = e.Rule, ["field"] = e.Field });
            }
        })
        .WithName("ValidateRoutingRules")
        .WithSummary("Checks a rule set (YAML or JSON) without applying it")
        .Accepts<string>("application/yaml", "text/yaml", "application/json", "text/plain")
        .Produces<RulesValidation>()
        .ProducesProblem(StatusCodes.Status400BadRequest);

        app.MapGet("/v1/stats", async (IClusterClient cluster, IServiceProvider services) =>
        {
            var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
            var routers = await Task.WhenAll(Enumerable.Range(0, info.Partitions).Select(p => cluster.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p)).GetStats()));
            var view = await Keystone.Client.Querying.ClusterQueries.GetClusterAsync(cluster, info.Partitions);
            return Results.Ok(new StatsView(info, routers, services.GetService<PipelineMetrics>()?.Snapshot(), services.GetService<Keystone.Storage.StorageRequests>()?.Snapshot(),
                services.GetService<ILocalSiloDetails>()?.SiloAddress.ToParsableString(), view));
        }).WithTags("Pipeline").WithName("GetStats").WithSummary("Pipeline set-up, per-router counters, this silo's ingest counters and address, the cluster's members and where each partition runs").Produces<StatsView>();

        app.MapGet("/v1/cluster", async (IClusterClient cluster) =>
        {
            var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
            return Results.Ok(await Keystone.Client.Querying.ClusterQueries.GetClusterAsync(cluster, info.Partitions));
        }).WithTags("Pipeline").WithName("GetCluster")
          .WithSummary("The silos in the membership table (address, name, status) and the silo each partition's router and operators run on")
          .Produces<Keystone.Client.Querying.ClusterView>();

        app.MapGet("/v1/checkpoints", async (IClusterClient cluster) =>
            Results.Ok(await cluster.GetGrain<Keystone.Checkpointing.ICheckpointCoordinatorGrain>(0).GetStatus()))
            .WithTags("Pipeline").WithName("GetCheckpoints")
            .WithSummary("Checkpoint barriers: the newest started and completed, and the fronting position each partition's last completed checkpoint covers")
            .Produces<Keystone.Checkpointing.CheckpointStatus>();
    }

    private static string Short(string s) => s.Length <= 64 ? s : s[..61] + "...";
}
