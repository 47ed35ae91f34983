using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Keystone.Graph;

/// <summary>
/// Graph reads for REST and the typed client (one implementation). A stateless worker, local to the caller's silo:
/// it fans out to node grains with bounded depth and fan-out and says when a bound cut the answer short.
/// </summary>
[StatelessWorker]
public sealed class GraphQueryGrain(IOptions<GraphOptions> options) : Grain, IGraphQueryGrain
{
    private readonly GraphOptions _options = options.Value;

    public Task<GraphNodeView?> GetNode(NodeType type, string id) => GraphNodes.Get(GrainFactory, type, id).GetNode();

    public async Task<EdgePage?> GetEdges(NodeType type, string id, EdgeQuery query)
    {
        CheckLimit(query.Limit);
        if (query.Label is { } label && GraphSchema.LabelProblem(type, query.Direction, label) is { } wrong) throw new ArgumentException(wrong, nameof(query));
        var page = await GraphNodes.Get(GrainFactory, type, id).GetEdges(query);
        if (page is null || query.Direction == EdgeDirection.Out || !query.Resolve || page.Edges.Count == 0) return page;

        // Reverse entries record who and since when; the edge's live properties are on the forward side.
        var resolved = await Task.WhenAll(page.Edges.GroupBy(e => (e.Label, e.Type, e.Id)).Select(async g =>
        {
            GraphSchema.TryParseLabel(g.Key.Label, out var label);
            GraphSchema.TryParseType(g.Key.Type, out var sourceType);
            var forward = await GraphNodes.Get(GrainFactory, sourceType, g.Key.Id).GetOutEdges(label, [id]);
            return (g.Key, Forward: forward.FirstOrDefault());
        }));
        var byKey = resolved.ToDictionary(r => r.Key, r => r.Forward);
        return page with
        {
            Edges = [.. page.Edges.Select(e => byKey.GetValueOrDefault((e.Label, e.Type, e.Id)) is { } f
                ? e with { FirstSeen = f.FirstSeen, LastSeen = f.LastSeen, Count = f.Count, Weight = f.Weight }
                : e)],
        };
    }

    public async Task<TraversalResult?> AlsoWatched(string userId, int limit)
    {
        CheckLimit(limit);
        var fanOut = _options.TraversalFanOut;
        // Hop 1, one call: the user's strongest titles (by watch time) seed the walk; everything it watched is excluded.
        if (await GraphNodes.Get(GrainFactory, NodeType.User, userId).StartTraversal(EdgeLabel.Watches, fanOut, _options.MaxLimit * 10) is not { } start) return null;
        var (seeds, seen) = (start.Top, start.Out);
        var cut = new List<string>();
        if (seeds.Total > fanOut) cut.Add($"hop 1: followed the {fanOut} most-watched of the user's {seeds.Total} titles");
        if (!seen.Complete) cut.Add($"only the first {seen.Ids.Count} watched titles were excluded");

        // Hop 2 (materialised): each title's co-watch counts are the other titles its viewers watched.
        var coWatched = await Task.WhenAll(seeds.Edges.Select(async e => (e.Id, Ranking: await GraphNodes.Get(GrainFactory, NodeType.Video, e.Id).GetRanking(FactKind.CoWatch, fanOut))));
        var partial = coWatched.Where(c => !c.Ranking.Complete).Select(c => c.Id).ToList();
        if (partial.Count > 0) cut.Add($"hop 2: {partial.Count} titles have more co-watched titles than the fan-out of {fanOut}");

        var ranked = GraphRanking.AlsoWatched(coWatched.ToDictionary(c => c.Id, c => c.Ranking, StringComparer.Ordinal), seen.Ids.ToHashSet(StringComparer.Ordinal), limit);
        return new TraversalResult(userId, ranked, 2, fanOut, cut.Count > 0, cut);
    }

    public async Task<TraversalResult?> Recommendations(string profileId, int limit)
    {
        CheckLimit(limit);
        var fanOut = _options.TraversalFanOut;
        if (await GraphNodes.Get(GrainFactory, NodeType.Profile, profileId).StartTraversal(EdgeLabel.Prefers, fanOut, _options.MaxLimit * 10) is not { } start) return null;
        var (genres, played) = (start.Top, start.Ranked);
        var cut = new List<string>();
        if (genres.Total > fanOut) cut.Add($"hop 1: followed the {fanOut} strongest of {genres.Total} preferred genres");
        if (!played.Complete) cut.Add($"only the {played.Items.Count} most-played titles were excluded");

        var titles = await Task.WhenAll(genres.Edges.Select(async g => (g.Id, Ranking: await GraphNodes.Get(GrainFactory, NodeType.Genre, g.Id).GetRanking(FactKind.Viewer, fanOut))));
        var partial = titles.Where(t => !t.Ranking.Complete).Select(t => t.Id).ToList();
        if (partial.Count > 0) cut.Add($"hop 2: {partial.Count} genres have more titles than the fan-out of {fanOut}");

        // Affinity ranks the genres; plays break ties between genres with no watch time yet.
        var preferences = genres.Edges.Select(g => (g.Id, (g.Weight ?? 0) + g.Count / 1000.0)).ToList();
        var ranked = GraphRanking.Recommendations(preferences, titles.ToDictionary(t => t.Id, t => t.Ranking, StringComparer.Ordinal),
            played.Items.Select(p => p.Id).ToHashSet(StringComparer.Ordinal), limit);
        return new TraversalResult(profileId, ranked, 2, fanOut, cut.Count > 0, cut);
    }

    private void CheckLimit(int limit)
    {
        if (limit < 1 || limit > _options.MaxLimit) throw new ArgumentOutOfRangeException(nameof(limit), limit, $"limit must be from 1 to {_options.MaxLimit}");
    }
}
