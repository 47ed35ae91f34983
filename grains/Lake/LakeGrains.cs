using Orleans.Concurrency;

namespace Keystone.Lake;

/// <summary>SQL and reports over the lake, answered on the silo that receives the call (its cache, its DuckDB).</summary>
[StatelessWorker]
public sealed class AnalyticsGrain(LakeQueryEngine engine) : Grain, IAnalyticsGrain
{
    public Task<AnalyticsResult> Query(AnalyticsQuery query) => engine.QueryAsync(query.Sql, query.From, query.To);

    public Task<AnalyticsResult> TopTitles(DateTimeOffset from, DateTimeOffset to, string? region, string? deviceType, int limit) =>
        engine.TopTitlesAsync(from, to, region, deviceType, limit);

    public Task<AnalyticsResult> Ads(string campaign, DateTimeOffset from, DateTimeOffset to) => engine.AdsAsync(campaign, from, to);
}

/// <summary>The one compactor: runs never overlap, so two never write the same hour's files at once.</summary>
public sealed class LakeCompactorGrain(LakeCompactor compactor) : Grain, ILakeCompactorGrain
{
    public async Task<CompactionReport> Compact(DateTimeOffset from, DateTimeOffset to, bool includeOpen = false)
    {
        if (to <= from) throw new ArgumentException("to: must be later than from");
        if (to - from > TimeSpan.FromDays(31)) throw new ArgumentException("to: one compaction covers at most 31 days");
        // DuckDB and gzip work off the grain's scheduler, on the compactor's low-priority thread.
        return await compactor.CompactInBackgroundAsync(from, to, includeOpen);
    }
}
