using Orleans.Concurrency;

namespace Keystone.Ads;

public enum AdEventKind
{
    Impression,
    FirstQuartile,
    Midpoint,
    ThirdQuartile,
    Complete,
    Skip,
    Click,
}

/// <summary>The fields of an <c>ad.*</c> event that the campaign grain needs (the schema guarantees they are there).</summary>
[GenerateSerializer, Immutable]
public sealed record AdEvent(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] AdEventKind Kind,
    [property: Id(2)] DateTimeOffset Timestamp,
    [property: Id(3)] string CampaignId,
    [property: Id(4)] string AdSessionId,
    [property: Id(5)] string ProfileId,
    [property: Id(6)] string DeviceId,
    [property: Id(7)] long CostMicros);

/// <summary>One campaign's events from one logged delivery of one partition, in arrival order.</summary>
/// <param name="Sequence">The operator's log position: a grain that has applied it answers from memory instead.</param>
[GenerateSerializer, Immutable]
public sealed record AdBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] AdEvent[] Events);

/// <summary>The verdict on one event: billable (impressions and valid clicks) or not, and why a click is invalid.</summary>
/// <param name="Repeat">The event was applied before, outside a replay of its own delivery (a producer's re-send, or
/// a delivery replayed from the fronting log under a new position): the verdict is the one recorded then. The topics
/// skip these (they had the event already); the committed exports take them, since an export whose checkpoint never
/// completed has not had them (see <c>CommittedExport</c>).</param>
[GenerateSerializer, Immutable]
public sealed record AdDecision(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] bool Billable,
    [property: Id(2)] string? InvalidReason,
    [property: Id(3)] bool Repeat = false);

/// <param name="Decisions">One per event: for events applied now, for events of a batch replayed after a crash (so
/// that its outputs can be produced again), and, marked <see cref="AdDecision.Repeat"/>, for repeats of events applied
/// earlier, with their recorded verdict.</param>
[GenerateSerializer, Immutable]
public sealed record AdApplyResult(
    [property: Id(0)] Guid ActivationId,
    [property: Id(1)] IReadOnlyList<AdDecision> Decisions,
    [property: Id(2)] int Applied,
    [property: Id(3)] int Duplicates);

[GenerateSerializer, Immutable]
public sealed record FrequencyCap(
    [property: Id(0)] int MaxImpressions,
    [property: Id(1)] TimeSpan Window);

/// <summary>What an advertiser sets: a name, a budget (null: unlimited) and a frequency cap (null: none).</summary>
[GenerateSerializer, Immutable]
public sealed record CampaignSettings(
    [property: Id(0)] string Name,
    [property: Id(1)] long? BudgetMicros,
    [property: Id(2)] FrequencyCap? FrequencyCap);

[GenerateSerializer, Immutable]
public sealed record AdCounts(
    [property: Id(0)] long Impressions,
    [property: Id(1)] long Clicks,
    [property: Id(2)] long InvalidClicks,
    [property: Id(3)] long FirstQuartiles,
    [property: Id(4)] long Midpoints,
    [property: Id(5)] long ThirdQuartiles,
    [property: Id(6)] long Completes,
    [property: Id(7)] long Skips,
    [property: Id(8)] long SpendMicros);

/// <summary>Rates over impressions; null where there is no impression to divide by.</summary>
[GenerateSerializer, Immutable]
public sealed record AdRates(
    [property: Id(0)] double? Ctr,
    [property: Id(1)] double? CompletionRate,
    [property: Id(2)] double? SkipRate);

/// <param name="SpendLastHourMicros">Spend in the last hour of event time: the pace the budget is going at.</param>
[GenerateSerializer, Immutable]
public sealed record BudgetView(
    [property: Id(0)] long? BudgetMicros,
    [property: Id(1)] long SpentMicros,
    [property: Id(2)] long? RemainingMicros,
    [property: Id(3)] bool Exhausted,
    [property: Id(4)] DateTimeOffset? ExhaustedAt,
    [property: Id(5)] long SpendLastHourMicros);

[GenerateSerializer, Immutable]
public sealed record AdSessionSummary(
    [property: Id(0)] long Sessions,
    [property: Id(1)] long Completed,
    [property: Id(2)] long Skipped,
    [property: Id(3)] long Clicked,
    [property: Id(4)] long MissingImpression,
    [property: Id(5)] int Open);

[GenerateSerializer, Immutable]
public sealed record CampaignView(
    [property: Id(0)] string CampaignId,
    [property: Id(1)] string? Name,
    [property: Id(2)] bool Configured,
    [property: Id(3)] AdCounts Totals,
    [property: Id(4)] AdRates Rates,
    [property: Id(5)] BudgetView Budget,
    [property: Id(6)] FrequencyCap? FrequencyCap,
    [property: Id(7)] IReadOnlyDictionary<string, long> InvalidTraffic,
    [property: Id(8)] AdSessionSummary Sessions,
    [property: Id(9)] DateTimeOffset? LastEventAt);

[GenerateSerializer, Immutable]
public sealed record AdWindowView(
    [property: Id(0)] DateTimeOffset Start,
    [property: Id(1)] DateTimeOffset End,
    [property: Id(2)] AdCounts Counts,
    [property: Id(3)] AdRates Rates);

[GenerateSerializer, Immutable]
public sealed record AdSeriesView(
    [property: Id(0)] string CampaignId,
    [property: Id(1)] string Window,
    [property: Id(2)] IReadOnlyList<AdWindowView> Windows);

/// <summary>The ad server's question: may this campaign be shown to this profile now?</summary>
[GenerateSerializer, Immutable]
public sealed record EligibilityView(
    [property: Id(0)] string CampaignId,
    [property: Id(1)] string ProfileId,
    [property: Id(2)] bool Eligible,
    [property: Id(3)] IReadOnlyList<string> Reasons,
    [property: Id(4)] int ImpressionsInWindow,
    [property: Id(5)] FrequencyCap? FrequencyCap,
    [property: Id(6)] long? RemainingBudgetMicros);

/// <summary>An ad campaign: exact counts, spend and budget, frequency caps, ad sessions and click-fraud decisions.</summary>
public interface IAdCampaignGrain : IGrainWithStringKey
{
    ValueTask<AdApplyResult> Apply(AdBatch batch);

    /// <summary>
    /// Makes durable everything applied from <paramref name="partition"/> up to log position
    /// <paramref name="sequence"/>. Every partition's operator asks at its barrier; one write that covers them all
    /// answers them all.
    /// </summary>
    [AlwaysInterleave]
    Task<Guid> Checkpoint(int partition, long sequence);

    /// <summary>Creates or updates the advertiser's settings; written at once, not at the next checkpoint.</summary>
    Task<CampaignView> Configure(CampaignSettings settings);

    /// <summary>Null when the campaign is neither configured nor has any event.</summary>
    [AlwaysInterleave]
    Task<CampaignView?> GetCampaign();

    [AlwaysInterleave]
    Task<AdSeriesView?> GetSeries(bool hourly);

    // Interleaved and synchronous inside: the ad server's latency budget must not queue behind a batch.
    [AlwaysInterleave]
    Task<EligibilityView?> CheckEligibility(string profileId);
}

[GenerateSerializer, Immutable]
public sealed record AdsOperatorStats(
    [property: Id(0)] int Partition,
    [property: Id(1)] long Sequence,
    [property: Id(2)] long CheckpointedSequence,
    [property: Id(3)] long Events,
    [property: Id(4)] long Billable,
    [property: Id(5)] long Invalid,
    [property: Id(6)] long Duplicates,
    [property: Id(7)] long Checkpoints,
    [property: Id(8)] long Replayed,
    [property: Id(9)] IReadOnlyDictionary<string, LatencySnapshot> CountedLag,
    [property: Id(10)] LatencySnapshot LogAppend,
    [property: Id(11)] LatencySnapshot Dispatch,
    [property: Id(12)] long Exported,
    [property: Id(13)] int ExportPending);

/// <summary>The ad operator of one partition of the ad topic: logs, dispatches to campaigns, emits the sinks.</summary>
public interface IAdsOperatorGrain : Keystone.Checkpointing.IEntityOperatorGrain
{
    [AlwaysInterleave]
    Task<AdsOperatorStats> GetStats();

    Task CheckpointNow();

    [AlwaysInterleave]
    Task ResetStats();
}

/// <summary>What makes campaign settings acceptable; shared by the REST gateway, the typed client and the grain.</summary>
public static class CampaignSettingsRules
{
    public static IEnumerable<string> Problems(CampaignSettings s)
    {
        if (string.IsNullOrWhiteSpace(s.Name)) yield return "name: must not be empty";
        else if (s.Name.Length > 200) yield return "name: must be at most 200 characters";
        if (s.BudgetMicros is < 0) yield return $"budget_micros: must not be negative, got {s.BudgetMicros}";
        if (s.FrequencyCap is { } cap)
        {
            if (cap.MaxImpressions < 1) yield return $"frequency_cap.max_impressions: must be at least 1, got {cap.MaxImpressions}";
            if (cap.Window < TimeSpan.FromSeconds(1) || cap.Window > TimeSpan.FromDays(30))
                yield return $"frequency_cap.window_seconds: must be between 1 and {(int)TimeSpan.FromDays(30).TotalSeconds}, got {(long)cap.Window.TotalSeconds}";
        }
    }
}
