using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Keystone.Archive;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Gateway;

public sealed record DryRunDestination(string Rule, string Topic, string Priority, JsonNode? Output);

public sealed record DryRunResult(int Index, string? EventId, IReadOnlyList<string> MatchedRules, IReadOnlyList<DryRunDestination> Destinations, bool Unrouted, string? Error);

public sealed record DryRunResponse(string RulesHash, IReadOnlyList<DryRunResult> Results);

/// <summary>Live routing rules: replace (validated as a whole), list versions, roll back, and dry-run against sample events.</summary>
internal static class LiveRulesEndpoints
{
    public static void MapLiveRules(this IEndpointRouteBuilder app)
    {
        var routing = app.MapGroup("/v1/routing").WithTags("Routing").RequireAuthorization(ScopePolicies.Read);
        routing.MapPut("/rules", PutRoutingRules).WithName("PutRoutingRules").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Replaces the routing rules on every router without a restart (validated as a whole first; versioned). Refuses a set that leaves an operator's input topic without a rule, unless allow_idle=true")
          .Accepts<string>("application/yaml", "text/yaml", "application/json", "text/plain");
        routing.MapGet("/rules/versions", GetRoutingRuleVersions).WithName("GetRoutingRuleVersions")
          .WithSummary("Every kept version of the live rules, oldest first (empty while the rule file is in force)");
        routing.MapPost("/rules/versions/{version:int}/rollback", RollBackRoutingRules).WithName("RollBackRoutingRules").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Makes an earlier version current again, as a new version");
        // Trying rules on sample events publishes nothing: a read.
        routing.MapPost("/rules/dry-run", DryRun).WithName("DryRunRoutingRules")
          .WithSummary("Routes sample events through a rule set (or the rules in force) and shows, per event, the rules that matched and each destination's output; publishes nothing")
          .Accepts<JsonObject>("application/json");
    }

    internal static async Task<Results<Ok<RulesVersionInfo>, BadRequestProblem, TooLargeProblem>> PutRoutingRules(HttpRequest request, IClusterClient cluster,
        SchemaRegistryProvider schemas, IOptions<RoutingOptions> routing, IOptions<ArchiveOptions> archive)
    {
        var allowIdle = request.Query["allow_idle"];
        if (allowIdle.Count > 1 || (allowIdle.Count == 1 && allowIdle[0] is not ("true" or "false")))
            return Problems.BadRequest($"query parameter 'allow_idle' must be true or false, got '{allowIdle}'");
        var (text, tooLarge) = await ReadText(request);
        if (tooLarge is not null) return tooLarge;
        // The grain validates the set as a whole; this adds what only the deployment knows: which operators run.
        if (allowIdle is not ["true"] && TryParse(text!, routing.Value, schemas) is { } parsed
            && OperatorInputs.Unfed(parsed, OperatorInputs.All(archive.Value.Enabled)) is { Count: > 0 } unfed)
            return Problems.BadRequest($"{string.Join("; ", unfed)}. Add a rule with that destination, or send ?allow_idle=true to apply the set anyway.",
                new Dictionary<string, object?> { ["warnings"] = unfed });
        var update = await cluster.GetGrain<IRoutingRulesGrain>(0).Apply(text!, "PUT /v1/routing/rules");
        return Answer(update);
    }

    internal static async Task<Ok<RulesVersionInfo[]>> GetRoutingRuleVersions(IClusterClient cluster) =>
        TypedResults.Ok((await cluster.GetGrain<IRoutingRulesGrain>(0).GetVersions()).ToArray());

    internal static async Task<Results<Ok<RulesVersionInfo>, BadRequestProblem, NotFoundProblem>> RollBackRoutingRules(int version, IClusterClient cluster)
    {
        var update = await cluster.GetGrain<IRoutingRulesGrain>(0).Rollback(version);
        if (update is null) return Problems.NotFound($"no routing rules version {version}");
        return update.Error is { } e ? RuleProblem(e) : TypedResults.Ok(update.Applied!);
    }

    private static RuleSet? TryParse(string text, RoutingOptions routing, SchemaRegistryProvider schemas)
    {
        try
        {
            return RuleSetParser.Parse(text, "PUT /v1/routing/rules", RoutingRulesGrain.Settings(routing, schemas));
        }
        catch (RoutingRulesException)
        {
            return null;
        }
    }

    private static Results<Ok<RulesVersionInfo>, BadRequestProblem, TooLargeProblem> Answer(RulesUpdate update) =>
        update.Error is { } e ? RuleProblem(e) : TypedResults.Ok(update.Applied!);

    private static BadRequestProblem RuleProblem(RulesError e) =>
        Problems.BadRequest(e.Message, new Dictionary<string, object?> { ["line"] = e.Line, ["column"] = e.Column, ["rule"] = e.Rule, ["field"] = e.Field });

    internal static BadRequestProblem RuleProblem(RoutingRulesException e) => RuleProblem(new RulesError(e.Message, e.Line, e.Column, e.Rule, e.Field));

    internal static async Task<(string? Text, TooLargeProblem? TooLarge)> ReadText(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        var buffer = new char[RuleSetParser.MaxTextBytes + 1];
        var read = await reader.ReadBlockAsync(buffer);
        return read > RuleSetParser.MaxTextBytes
            ? (null, Problems.TooLarge($"a rule set is at most {RuleSetParser.MaxTextBytes} characters"))
            : (new string(buffer, 0, read), null);
    }

    internal static async Task<Results<Ok<DryRunResponse>, BadRequestProblem, TooLargeProblem>> DryRun(HttpRequest request, IClusterClient cluster, RoutingRulesProvider provider, SchemaRegistryProvider schemas,
        IOptions<RoutingOptions> routing, IOptions<IngestOptions> ingest, TimeProvider time)
    {
        var limit = ingest.Value.MaxRequestBytes;
        if (request.ContentLength > limit) return Problems.TooLarge($"the body is {request.ContentLength} bytes; the limit is {limit} bytes");
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
            if (root.ValueKind != JsonValueKind.Object) return Problems.BadRequest("body must be a JSON object: { \"rules\": \"<YAML or JSON text, optional>\", \"events\": [ ... ] }");
            foreach (var p in root.EnumerateObject())
                if (p.Name is not ("rules" or "events")) return Problems.BadRequest($"{p.Name}: unknown field (known: rules, events)");
            if (!root.TryGetProperty("events", out var eventsNode) || eventsNode.ValueKind != JsonValueKind.Array)
                return Problems.BadRequest("events: required, a JSON array of events");
            if (eventsNode.GetArrayLength() > 1_000) return Problems.BadRequest($"events: at most 1000 sample events, got {eventsNode.GetArrayLength()}");

            RoutingEngine engine;
            if (root.TryGetProperty("rules", out var rulesNode) && rulesNode.ValueKind != JsonValueKind.Null)
            {
                if (rulesNode.ValueKind != JsonValueKind.String) return Problems.BadRequest("rules: expected the rule set as a string (YAML or JSON text)");
                try
                {
                    engine = new RoutingEngine(RuleSetParser.Parse(rulesNode.GetString()!, "dry-run", RoutingRulesGrain.Settings(routing.Value, schemas)));
                }
                catch (RoutingRulesException e)
                {
                    return RuleProblem(e);
                }
            }
            else
            {
                // The live rules if any were applied, else the rule file.
                var live = await cluster.GetGrain<IRoutingRulesGrain>(0).GetCurrent();
                engine = live is null ? provider.Current : new RoutingEngine(RuleSetParser.Parse(live.Text, "live rules", RoutingRulesGrain.Settings(routing.Value, schemas)));
            }

            var now = time.GetUtcNow();
            var parsed = EventBatchParser.Parse(Encoding.UTF8.GetBytes(eventsNode.GetRawText()), BodyFormat.JsonArray, schemas.Current, now: now);
            if (parsed.BodyError is not null) return Problems.BadRequest($"events: {parsed.BodyError}");
            var results = new List<DryRunResult>();
            foreach (var rejection in parsed.Rejections)
                results.Add(new DryRunResult(rejection.Index, rejection.EventId, [], [], false, rejection.Error));
            for (var i = 0; i < parsed.Events.Count; i++)
            {
                var e = parsed.Events[i];
                var traces = engine.Explain(e, Partitioning.PartitionOf(e, ingest.Value.Partitions), now);
                results.Add(new DryRunResult(parsed.Indexes[i], e.EventId.ToString(), [.. traces.Select(t => t.Rule).Distinct()],
                    [.. traces.Select(t => new DryRunDestination(t.Rule, t.Topic, t.Priority.ToString().ToUpperInvariant(), t.Output is null ? null : JsonNode.Parse(EventJson.Serialize(t.Output))))],
                    traces.Count == 0, null));
            }
            return TypedResults.Ok(new DryRunResponse(engine.Rules.Hash, [.. results.OrderBy(r => r.Index)]));
        }
    }
}
