namespace Keystone.Ads;

/// <summary>Why a click is not billed.</summary>
public static class InvalidReasons
{
    public const string NoImpression = "no-impression";
    public const string TooFast = "too-fast";
    public const string ClickFlood = "click-flood";
    public const string CtrBurst = "ctr-burst";

    public static readonly IReadOnlyList<string> All = [NoImpression, TooFast, ClickFlood, CtrBurst];
}

/// <summary>What the rules need to know about one click, gathered by the campaign from its state.</summary>
/// <param name="ImpressionAt">The impression of the click's ad session; null when the session has none.</param>
/// <param name="DeviceClicksLastMinute">Clicks by the same device on this campaign in the minute before this one (any verdict).</param>
/// <param name="MinuteImpressions">Impressions in the click's one-minute window so far.</param>
/// <param name="MinuteValidClicks">Valid clicks in that window so far.</param>
/// <param name="BaselineImpressions">Impressions in the baseline minutes before it.</param>
/// <param name="BaselineValidClicks">Valid clicks in the baseline minutes.</param>
public readonly record struct ClickContext(
    DateTimeOffset ClickAt,
    DateTimeOffset? ImpressionAt,
    int DeviceClicksLastMinute,
    int ProfileClicksLastMinute,
    long MinuteImpressions,
    long MinuteValidClicks,
    long BaselineImpressions,
    long BaselineValidClicks);

/// <summary>
/// Real-time click-fraud rules, in the order they are checked; the first that fires names the reason. Plain and
/// deterministic: given the same state and click, the same verdict, which is what makes a replayed decision equal
/// the original one.
/// </summary>
public sealed class ClickFraudRules(FraudOptions options)
{
    public FraudOptions Options { get; } = options;

    /// <summary>The reason the click is invalid, or null when it is billable.</summary>
    public string? Evaluate(in ClickContext click)
    {
        // A click with nothing shown before it in its ad session is fabricated (or its impression was never sent).
        if (click.ImpressionAt is not { } shown) return InvalidReasons.NoImpression;
        if (click.ClickAt - shown < Options.MinClickDelay) return InvalidReasons.TooFast;
        if (click.DeviceClicksLastMinute >= Options.MaxClicksPerMinute || click.ProfileClicksLastMinute >= Options.MaxClicksPerMinute)
            return InvalidReasons.ClickFlood;
        if (IsBurst(click)) return InvalidReasons.CtrBurst;
        return null;
    }

    /// <summary>
    /// True when counting this click would lift the minute's CTR above <see cref="FraudOptions.BurstFactor"/> times
    /// the campaign's own recent CTR. Only valid clicks count, so a burst is capped at the threshold rather than
    /// feeding itself.
    /// </summary>
    public bool IsBurst(in ClickContext click)
    {
        if (click.MinuteImpressions < Options.BurstMinImpressions || click.BaselineImpressions < Options.BaselineMinImpressions) return false;
        var baseline = Math.Max((double)click.BaselineValidClicks / click.BaselineImpressions, Options.MinBaselineCtr);
        var withThis = (double)(click.MinuteValidClicks + 1) / click.MinuteImpressions;
        return withThis > Options.BurstFactor * baseline;
    }
}
