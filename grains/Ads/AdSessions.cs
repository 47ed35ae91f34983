namespace Keystone.Ads;

/// <summary>One showing of one ad, folded from the events that share its <c>ad_session_id</c>.</summary>
public sealed class AdSessionState
{
    public DateTimeOffset? ImpressionAt { get; set; }
    public DateTimeOffset FirstEventAt { get; set; }
    public DateTimeOffset LastEventAt { get; set; }

    /// <summary>Quartiles reached: bit 0 first, bit 1 midpoint, bit 2 third.</summary>
    public int Quartiles { get; set; }

    public bool Completed { get; set; }
    public bool Skipped { get; set; }
    public int Clicks { get; set; }
}

public sealed class AdSessionCounters
{
    public long Sessions { get; set; }
    public long Completed { get; set; }
    public long Skipped { get; set; }
    public long Clicked { get; set; }

    /// <summary>Sessions whose first event was not an impression: a fraud signal.</summary>
    public long MissingImpression { get; set; }
}

/// <summary>
/// Ad sessionization: impression → quartiles → complete, or skip, or click. Sessions close after a timeout of event
/// time with no event (a finished one, completed or skipped, after <c>finishedGrace</c>: only a late click can still
/// come), and at most <c>maxSessions</c> stay open (the least recently active go first), so a campaign's state stays
/// bounded however many showings it has.
/// </summary>
public sealed class AdSessions(Dictionary<string, AdSessionState> open, AdSessionCounters counters, TimeSpan timeout, int maxSessions, TimeSpan finishedGrace)
{
    public int Open => open.Count;
    public AdSessionCounters Counters => counters;

    public AdSessionState? Find(string sessionId) => open.GetValueOrDefault(sessionId);

    /// <summary>Folds the event into its session (opening it if needed) and returns the session.</summary>
    public AdSessionState Observe(string sessionId, AdEventKind kind, DateTimeOffset at)
    {
        if (!open.TryGetValue(sessionId, out var session))
        {
            session = new AdSessionState { FirstEventAt = at, LastEventAt = at };
            open[sessionId] = session;
            counters.Sessions++;
            if (kind != AdEventKind.Impression) counters.MissingImpression++;
        }
        if (at > session.LastEventAt) session.LastEventAt = at;
        switch (kind)
        {
            case AdEventKind.Impression:
                session.ImpressionAt ??= at;
                break;
            case AdEventKind.FirstQuartile: session.Quartiles |= 1; break;
            case AdEventKind.Midpoint: session.Quartiles |= 2; break;
            case AdEventKind.ThirdQuartile: session.Quartiles |= 4; break;
            case AdEventKind.Complete:
                if (!session.Completed) counters.Completed++;
                session.Completed = true;
                break;
            case AdEventKind.Skip:
                if (!session.Skipped) counters.Skipped++;
                session.Skipped = true;
                break;
            case AdEventKind.Click:
                if (session.Clicks == 0) counters.Clicked++;
                session.Clicks++;
                break;
        }
        return session;
    }

    /// <summary>Closes sessions idle longer than the timeout at <paramref name="now"/> (event time), then the oldest beyond the bound.</summary>
    public int Expire(DateTimeOffset now)
    {
        var cutoff = now - timeout;
        var finishedCutoff = now - (finishedGrace < timeout ? finishedGrace : timeout);
        var stale = open.Where(s => s.Value.LastEventAt < cutoff || ((s.Value.Completed || s.Value.Skipped) && s.Value.LastEventAt < finishedCutoff))
            .Select(s => s.Key).ToList();
        foreach (var id in stale) open.Remove(id);
        var removed = stale.Count;
        if (open.Count > maxSessions)
        {
            var excess = open.OrderBy(s => s.Value.LastEventAt).Take(open.Count - maxSessions).Select(s => s.Key).ToList();
            foreach (var id in excess) open.Remove(id);
            removed += excess.Count;
        }
        return removed;
    }
}
