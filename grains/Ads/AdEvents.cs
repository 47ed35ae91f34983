using Keystone.Events;

namespace Keystone.Ads;

public static class AdTopics
{
    /// <summary>The ad operators' input; the shipped rule <c>ads-campaigns</c> routes every <c>ad.*</c> event here.</summary>
    public const string Input = "ads-campaign";
}

public static class AdEvents
{
    public static AdEventKind? KindOf(string eventType) => eventType switch
    {
        "ad.impression" => AdEventKind.Impression,
        "ad.first_quartile" => AdEventKind.FirstQuartile,
        "ad.midpoint" => AdEventKind.Midpoint,
        "ad.third_quartile" => AdEventKind.ThirdQuartile,
        "ad.complete" => AdEventKind.Complete,
        "ad.skip" => AdEventKind.Skip,
        "ad.click" => AdEventKind.Click,
        _ => null,
    };

    /// <summary>The campaign's view of an event; null when it is not an ad event or lacks what the schema requires
    /// (only possible with a custom schema that relaxed it).</summary>
    public static AdEvent? From(KeystoneEvent e)
    {
        if (KindOf(e.EventType) is not { } kind) return null;
        var p = e.Payload;
        if (p.GetString("campaign_id") is not { Length: > 0 } campaign || p.GetDistinctString("ad_session_id") is not { Length: > 0 } session) return null;
        return new AdEvent(e.EventId, kind, e.Timestamp, campaign, session,
            p.GetString("profile_id") ?? "", p.GetString("device_id") ?? "", p.GetInt64("cost_micros") ?? 0);
    }
}
