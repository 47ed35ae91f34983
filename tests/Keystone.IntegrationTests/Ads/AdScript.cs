using Keystone.Events;

namespace Keystone.IntegrationTests.Ads;

/// <summary>Builds ad sessions and keeps the exact figures they must produce.</summary>
internal sealed class AdScript(string campaign)
{
    private readonly List<KeystoneEvent> _events = [];

    public IReadOnlyList<KeystoneEvent> Events => _events;
    public List<KeystoneEvent> Billable { get; } = [];
    public Dictionary<Guid, string> Invalid { get; } = [];
    public long Impressions { get; private set; }
    public long ValidClicks { get; private set; }
    public long SpendMicros { get; private set; }
    public long Completes { get; private set; }
    public long Skips { get; private set; }
    public long Quartiles { get; private set; }

    public KeystoneEvent Event(string type, string user, string profile, string device, string session, DateTimeOffset at, long? cost = null)
    {
        var fields = new List<(string, object?)>
        {
            ("campaign_id", campaign), ("ad_id", "ad-1"), ("creative_id", "cr-1"), ("user_id", user), ("profile_id", profile),
            ("device_id", device), ("ad_session_id", session),
        };
        if (cost is not null) fields.Add(("cost_micros", cost.Value));
        var e = new KeystoneEvent(Guid.NewGuid(), type, at, "1.0", new EventSource("ad-gateway", "smart_tv", "us-east-1"), Payload.Create([.. fields]), EventMetadata.Empty);
        _events.Add(e);
        return e;
    }

    /// <summary>Impression, then the given follow-ups (seconds after it): "q" quartiles, "complete", "skip", "click".</summary>
    public List<KeystoneEvent> Session(string user, string profile, string device, DateTimeOffset at, long cost, params (string What, double After)[] then)
    {
        var session = Guid.NewGuid().ToString("N");
        var list = new List<KeystoneEvent> { Event("ad.impression", user, profile, device, session, at, cost) };
        Impressions++;
        SpendMicros += cost;
        Billable.Add(list[0]);
        foreach (var (what, after) in then)
        {
            var t = at.AddSeconds(after);
            switch (what)
            {
                case "q":
                    list.Add(Event("ad.first_quartile", user, profile, device, session, t));
                    list.Add(Event("ad.midpoint", user, profile, device, session, t.AddSeconds(1)));
                    list.Add(Event("ad.third_quartile", user, profile, device, session, t.AddSeconds(2)));
                    Quartiles++;
                    break;
                case "complete":
                    list.Add(Event("ad.complete", user, profile, device, session, t));
                    Completes++;
                    break;
                case "skip":
                    list.Add(Event("ad.skip", user, profile, device, session, t));
                    Skips++;
                    break;
                case "click":
                    var click = Event("ad.click", user, profile, device, session, t);
                    list.Add(click);
                    if (after < 0.3) Invalid[click.EventId] = "too-fast";
                    else
                    {
                        ValidClicks++;
                        Billable.Add(click);
                    }
                    break;
            }
        }
        return list;
    }

    /// <summary>A click in a session that never had an impression.</summary>
    public KeystoneEvent GhostClick(string user, string profile, string device, DateTimeOffset at)
    {
        var click = Event("ad.click", user, profile, device, Guid.NewGuid().ToString("N"), at);
        Invalid[click.EventId] = "no-impression";
        return click;
    }

    /// <summary>Marks a click the click-flood rule must catch (the test arranges its device's click count).</summary>
    public void ExpectFlood(KeystoneEvent click)
    {
        ValidClicks--;
        Billable.Remove(click);
        Invalid[click.EventId] = "click-flood";
    }
}
