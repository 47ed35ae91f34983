using Keystone.Graph;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Gateway;

/// <summary>The real-time graph: nodes, one-hop edges (paged), and the two bounded two-hop traversals.</summary>
internal static class GraphEndpoints
{
    public static void MapGraph(this IEndpointRouteBuilder app)
    {
        var graph = app.MapGroup("/v1/graph").WithTags("Graph").RequireAuthorization(ScopePolicies.Read);
        graph.MapGet("/operators", GetGraphOperators).WithName("GetGraphOperators")
          .WithSummary("Per partition: log position, events, invalid events, edge updates, edges created, duplicates, checkpoints, replayed, changes emitted");
        graph.MapGet("/{type}/{id}", GetGraphNode).WithName("GetGraphNode")
          .WithSummary("A node (users, videos, profiles, devices, series, genres): properties, first/last seen, degree per label and direction");
        graph.MapGet("/{type}/{id}/edges", GetGraphEdges).WithName("GetGraphEdges")
          .WithSummary("One hop: edges of a label (all when omitted) in one direction (out by default), with properties (in-edges: properties=false skips fetching them from the sources); page with limit and the returned cursor");
        graph.MapGet("/users/{id}/also-watched", GetAlsoWatched).WithName("GetAlsoWatched")
          .WithSummary("Two hops: titles watched by users who watched what this user watched, by co-watch weight, excluding what the user has seen");
        graph.MapGet("/profiles/{id}/recommendations", GetRecommendations).WithName("GetRecommendations")
          .WithSummary("Titles of the profile's preferred genres it has not played, by genre affinity and popularity");
    }

    internal static async Task<Ok<GraphOperatorStats[]>> GetGraphOperators(IClusterClient cluster) =>
        TypedResults.Ok(await PerPartition.Ask(cluster, key => cluster.GetGrain<IGraphOperatorGrain>(key).GetStats()));

    internal static async Task<Results<Ok<GraphNodeView>, BadRequestProblem, NotFoundProblem>> GetGraphNode(string type, string id, IClusterClient cluster)
    {
        if (Node(type, id, out var nodeType) is { } bad) return bad;
        var view = await cluster.GetGrain<IGraphQueryGrain>(0).GetNode(nodeType, id);
        return view is null ? Problems.NotFound($"no {GraphSchema.Name(nodeType)} '{id}' in the graph") : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<EdgePage>, BadRequestProblem, NotFoundProblem>> GetGraphEdges(string type, string id, HttpRequest request, IClusterClient cluster, IOptions<GraphOptions> options)
    {
        if (Node(type, id, out var nodeType) is { } bad) return bad;
        var direction = EdgeDirection.Out;
        var rawDirection = request.Query["direction"];
        if (rawDirection.Count > 1 || (rawDirection.Count == 1 && !TryDirection(rawDirection[0], out direction)))
            return Problems.BadRequest($"query parameter 'direction' must be out or in, got '{rawDirection}'");
        EdgeLabel? label = null;
        var rawLabel = request.Query["label"];
        if (rawLabel.Count > 1) return Problems.BadRequest("query parameter 'label' may be given once");
        if (rawLabel.Count == 1 && !string.IsNullOrEmpty(rawLabel[0]))
        {
            if (!GraphSchema.TryParseLabel(rawLabel[0], out var parsed))
                return Problems.BadRequest($"unknown edge label '{rawLabel[0]}'; labels are {GraphSchema.LabelNames}");
            if (GraphSchema.LabelProblem(nodeType, direction, parsed) is { } wrong) return Problems.BadRequest(wrong);
            label = parsed;
        }
        if (!Problems.TryInt(request, "limit", 1, options.Value.MaxLimit, 20, out var limit, out var problem)) return problem!;
        var properties = request.Query["properties"];
        if (properties.Count > 1 || (properties.Count == 1 && properties[0] is not ("true" or "false")))
            return Problems.BadRequest($"query parameter 'properties' must be true or false, got '{properties}'");
        var cursor = request.Query["cursor"];
        if (cursor.Count > 1) return Problems.BadRequest("query parameter 'cursor' may be given once");
        try
        {
            var page = await cluster.GetGrain<IGraphQueryGrain>(0).GetEdges(nodeType, id, new EdgeQuery(label, direction, limit, cursor.Count == 1 ? cursor[0] : null, properties.Count == 0 || properties[0] == "true"));
            return page is null ? Problems.NotFound($"no {GraphSchema.Name(nodeType)} '{id}' in the graph") : TypedResults.Ok(page);
        }
        catch (ArgumentException e)
        {
            return Problems.BadRequest($"query parameter 'cursor': {e.Message}");
        }
    }

    internal static async Task<Results<Ok<TraversalResult>, BadRequestProblem, NotFoundProblem>> GetAlsoWatched(string id, HttpRequest request, IClusterClient cluster, IOptions<GraphOptions> options)
    {
        if (Ids.Check(id, "user id") is { } bad) return bad;
        if (!Problems.TryInt(request, "limit", 1, options.Value.MaxLimit, 10, out var limit, out var problem)) return problem!;
        var result = await cluster.GetGrain<IGraphQueryGrain>(0).AlsoWatched(id, limit);
        return result is null ? Problems.NotFound($"no user '{id}' in the graph") : TypedResults.Ok(result);
    }

    internal static async Task<Results<Ok<TraversalResult>, BadRequestProblem, NotFoundProblem>> GetRecommendations(string id, HttpRequest request, IClusterClient cluster, IOptions<GraphOptions> options)
    {
        if (Ids.Check(id, "profile id") is { } bad) return bad;
        if (!Problems.TryInt(request, "limit", 1, options.Value.MaxLimit, 10, out var limit, out var problem)) return problem!;
        var result = await cluster.GetGrain<IGraphQueryGrain>(0).Recommendations(id, limit);
        return result is null ? Problems.NotFound($"no profile '{id}' in the graph") : TypedResults.Ok(result);
    }

    private static BadRequestProblem? Node(string type, string id, out NodeType nodeType)
    {
        if (!GraphSchema.TryParseType(type, out nodeType)) return Problems.BadRequest($"unknown node type '{type}'; types are {GraphSchema.TypeNames}");
        return Ids.Check(id, $"{GraphSchema.Name(nodeType)} id");
    }

    private static bool TryDirection(string? raw, out EdgeDirection direction)
    {
        direction = EdgeDirection.Out;
        if (string.Equals(raw, "out", StringComparison.OrdinalIgnoreCase)) return true;
        direction = EdgeDirection.In;
        return string.Equals(raw, "in", StringComparison.OrdinalIgnoreCase);
    }
}
