using System.ComponentModel.DataAnnotations;

namespace Keystone.Ads;

/// <summary>The ads pipeline: fraud rules, sessions, series, de-duplication and checkpoints. Section <c>Keystone:Ads</c>.</summary>
public sealed class AdsOptions
{
    public const string Section = "Keystone:Ads";

    public string BillingTopic { get; set; } = "ads-billing";
    public string AnalyticsTopic { get; set; } = "ads-analytics";
    public string FraudTopic { get; set; } = "ads-fraud-alerts";

    public FraudOptions Fraud { get; set; } = new();

    /// <summary>An ad session with no event for this long (event time) is closed and forgotten. An ad lasts seconds
    /// to a minute; every open session is in the campaign's checkpoint.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A completed or skipped session is kept this long after its last event, for a late click.</summary>
    public TimeSpan FinishedSessionGrace { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Open ad sessions one campaign keeps at most (the oldest are forgotten first).</summary>
    [Range(100, 10_000_000)]
    public int MaxSessions { get; set; } = 200_000;

    [Range(1, 100_000)]
    public int MinuteWindows { get; set; } = 180;

    [Range(1, 100_000)]
    public int HourWindows { get; set; } = 48;

    /// <summary>How long event ids are remembered (at most <see cref="DedupeCapacity"/> of them), against events a
    /// producer re-sends and against replays. A replay goes back to the last completed checkpoint, and while a killed
    /// silo is not yet declared dead no checkpoint completes: a minute or more on a loaded machine. A replay older than
    /// this counts its ad events again (2 minutes until stop 53: a campaign over-counted by 8 of 314 after a death
    /// declaration that took 121 s). As long as the graph's.</summary>
    public TimeSpan DedupeHorizon { get; set; } = TimeSpan.FromMinutes(10);

    [Range(16, 50_000_000)]
    public int DedupeCapacity { get; set; } = 200_000;

    /// <summary>How long a profile's impressions are kept for frequency capping when the campaign has no cap.</summary>
    public TimeSpan FrequencyRetention { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long committed export files (billing, fraud alerts) are kept for the systems that fetch them;
    /// older files are deleted (at start and hourly).</summary>
    public TimeSpan ExportRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>A campaign with this many events applied since its last write writes before the next barrier.</summary>
    [Range(100, 10_000_000)]
    public int MaxUnflushedEvents { get; set; } = 50_000;

    /// <summary>
    /// Campaign state writes each ads operator keeps in flight at a checkpoint. A campaign's state is large (about
    /// 450 KB in the benchmark: its de-duplication ids, open sessions and impression history) and is serialised on its
    /// grain's turn, so writing fifty at once took the machine for most of a second and the events in flight waited
    /// (ads benchmark, ad.complete p99 193 and 418 ms with 256 in flight; 54 and 92 ms with 2). Two per operator is 16
    /// per silo with eight partitions: at about 60 ms a write (the bucket's linger included) that is some 250 campaigns a
    /// second, 7,500 per 30-second interval. Raise it for more campaigns per silo than that.
    /// </summary>
    [Range(1, 10_000)]
    public int CheckpointConcurrency { get; set; } = 2;

    [Range(1, 10_000)]
    public int DispatchConcurrency { get; set; } = 64;

    public IEnumerable<string> Problems()
    {
        if (SessionTimeout <= TimeSpan.Zero) yield return $"{Section}:SessionTimeout must be positive.";
        if (FinishedSessionGrace < TimeSpan.Zero) yield return $"{Section}:FinishedSessionGrace must not be negative.";
        if (DedupeHorizon <= TimeSpan.Zero) yield return $"{Section}:DedupeHorizon must be positive.";
        if (FrequencyRetention <= TimeSpan.Zero) yield return $"{Section}:FrequencyRetention must be positive.";
        if (CheckpointInterval < TimeSpan.FromMilliseconds(100)) yield return $"{Section}:CheckpointInterval must be at least 100 ms.";
        // A restarted operator reads its last DedupeHorizon of exports back to know what it already sent.
        if (ExportRetention < TimeSpan.FromHours(1) || ExportRetention <= DedupeHorizon)
            yield return $"{Section}:ExportRetention must be at least 1 hour and longer than {Section}:DedupeHorizon (a restarted operator reads that much of its exports back).";
        foreach (var problem in Fraud.Problems()) yield return problem;
        foreach (var (name, topic) in new[] { ("BillingTopic", BillingTopic), ("AnalyticsTopic", AnalyticsTopic), ("FraudTopic", FraudTopic) })
            if (!Topics.StreamNames.IsValidTopicName(topic)) yield return $"{Section}:{name}: '{topic}' is not a valid topic name.";
    }
}

/// <summary>Thresholds of the click-fraud rules. Section <c>Keystone:Ads:Fraud</c>.</summary>
public sealed class FraudOptions
{
    /// <summary>A click sooner than this after its impression is faster than a person.</summary>
    public TimeSpan MinClickDelay { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>K: more clicks than this per device, or per profile, per minute on one campaign are invalid.</summary>
    [Range(1, 1_000_000)]
    public int MaxClicksPerMinute { get; set; } = 5;

    /// <summary>A minute whose CTR exceeds this many times the campaign's baseline is a burst.</summary>
    [Range(1.0, 1000.0)]
    public double BurstFactor { get; set; } = 4.0;

    /// <summary>Impressions a minute needs before its CTR is judged.</summary>
    [Range(1, 10_000_000)]
    public int BurstMinImpressions { get; set; } = 50;

    /// <summary>Minutes before the current one that form the baseline.</summary>
    [Range(1, 1_440)]
    public int BaselineMinutes { get; set; } = 10;

    /// <summary>Impressions the baseline needs before bursts are judged at all.</summary>
    [Range(1, 100_000_000)]
    public int BaselineMinImpressions { get; set; } = 200;

    /// <summary>A floor under the baseline CTR, so that a campaign with no clicks yet does not flag its first ones.</summary>
    [Range(0.0, 1.0)]
    public double MinBaselineCtr { get; set; } = 0.01;

    public IEnumerable<string> Problems()
    {
        if (MinClickDelay < TimeSpan.Zero) yield return $"{AdsOptions.Section}:Fraud:MinClickDelay must not be negative.";
    }
}
