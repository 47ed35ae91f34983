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
        // One pass over the payload instead of one per field (five): this ran for every ad event, about 6 % of the
        // silo's CPU in the ads benchmark (docs/performance.md, stop 51). As with Payload.GetString, a repeated name's
        // first occurrence counts.
        string? campaign = null, session = null, profile = null, device = null;
        long? cost = null;
        bool haveCampaign = false, haveSession = false, haveProfile = false, haveDevice = false, haveCost = false;
        var fields = e.Payload.Fields();
        while (fields.MoveNext())
        {
            if (!haveCampaign && fields.NameIs("campaign_id"u8)) (haveCampaign, campaign) = (true, fields.String);
            else if (!haveSession && fields.NameIs("ad_session_id"u8)) (haveSession, session) = (true, fields.DistinctString);
            else if (!haveProfile && fields.NameIs("profile_id"u8)) (haveProfile, profile) = (true, fields.String);
            else if (!haveDevice && fields.NameIs("device_id"u8)) (haveDevice, device) = (true, fields.String);
            else if (!haveCost && fields.NameIs("cost_micros"u8)) (haveCost, cost) = (true, fields.Int64);
        }
        if (campaign is not { Length: > 0 } || session is not { Length: > 0 }) return null;
        return new AdEvent(e.EventId, kind, e.Timestamp, campaign, session, profile ?? "", device ?? "", cost ?? 0);
    }
}
