using System.Runtime.InteropServices;
using System.Text.Json.Serialization;
using Keystone.Aggregation;
using Keystone.Storage;

namespace Keystone.Ads;

public sealed class AdCountersState
{
    public long Impressions { get; set; }
    public long Clicks { get; set; }
    public long InvalidClicks { get; set; }
    public long FirstQuartiles { get; set; }
    public long Midpoints { get; set; }
    public long ThirdQuartiles { get; set; }
    public long Completes { get; set; }
    public long Skips { get; set; }
    public long SpendMicros { get; set; }

    public void Add(AdEventKind kind, bool valid, long billedMicros)
    {
        switch (kind)
        {
            case AdEventKind.Impression: Impressions++; break;
            case AdEventKind.Click when valid: Clicks++; break;
            case AdEventKind.Click: InvalidClicks++; break;
            case AdEventKind.FirstQuartile: FirstQuartiles++; break;
            case AdEventKind.Midpoint: Midpoints++; break;
            case AdEventKind.ThirdQuartile: ThirdQuartiles++; break;
            case AdEventKind.Complete: Completes++; break;
            case AdEventKind.Skip: Skips++; break;
        }
        SpendMicros += billedMicros;
    }

    public AdCounts View() => new(Impressions, Clicks, InvalidClicks, FirstQuartiles, Midpoints, ThirdQuartiles, Completes, Skips, SpendMicros);

    public static AdRates Rates(AdCounts c) => c.Impressions == 0
        ? new AdRates(null, null, null)
        : new AdRates((double)c.Clicks / c.Impressions, (double)c.Completes / c.Impressions, (double)c.Skips / c.Impressions);
}

public sealed class AdWindowState
{
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset End { get; set; }
    public AdCountersState Counters { get; set; } = new();
}

/// <summary>An invalid click remembered with its reason, so that a replayed batch reproduces the original decision.</summary>
public sealed record InvalidMark(long Id, string Reason, long SeenAt);

/// <summary>A campaign's checkpointed state: counts, series, sessions, caps, and what it has applied.</summary>
public sealed class AdCampaignState
{
    public AdCountersState Totals { get; set; } = new();
    public Dictionary<string, long> InvalidByReason { get; set; } = [];
    public List<AdWindowState> Minutes { get; set; } = [];
    public List<AdWindowState> Hours { get; set; } = [];
    /// <summary>Open ad sessions, packed (see <see cref="AdSessions.Export"/>).</summary>
    public byte[]? Sessions { get; set; }
    public AdSessionCounters SessionCounters { get; set; } = new();

    /// <summary>Impression times per profile, newest last: frequency capping.</summary>
    [JsonConverter(typeof(TimesByKeyConverter))]
    public Dictionary<string, RecentTimes> ProfileImpressions { get; set; } = [];

    /// <summary>Click times per device ("d:") and per profile ("p:") within the last minute: the click-flood rule.</summary>
    [JsonConverter(typeof(TimesByKeyConverter))]
    public Dictionary<string, RecentTimes> RecentClicks { get; set; } = [];

    /// <summary>Partition → highest log sequence applied: a replayed batch is recognised by position.</summary>
    public Dictionary<int, long> Applied { get; set; } = [];

    /// <summary>The de-duplication memory (<see cref="EventIdHorizon.Pack"/>): a campaign remembers tens of thousands of
    /// ids, most of what it writes at a checkpoint.</summary>
    public byte[]? Dedupe { get; set; }

    /// <summary>The memory as states written before <see cref="Dedupe"/> hold it, (id hash, seen-at ticks) pairs of
    /// little-endian longs: read once, never written.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public byte[]? Seen { get; set; }
    public List<InvalidMark> InvalidMarks { get; set; } = [];

    public DateTimeOffset? LastEventAt { get; set; }
    public DateTimeOffset? ExhaustedAt { get; set; }
}

/// <summary>
/// One campaign's books, as plain logic: exact counts per event id, spend and budget, 1-minute and 1-hour series,
/// ad sessions, frequency caps and click-fraud verdicts. The grain wires it to storage and the operator.
/// </summary>
public sealed class CampaignLedger
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private readonly TumblingWindows _minutes = new(Minute);
    private readonly TumblingWindows _hours = new(TimeSpan.FromHours(1));
    private readonly AdsOptions _options;
    private readonly ClickFraudRules _rules;
    private readonly EventIdHorizon _seen;
    private readonly AdSessions _sessions;
    private readonly Dictionary<long, string> _invalid = [];

    public CampaignLedger(string campaignId, AdsOptions options, AdCampaignState state)
    {
        CampaignId = campaignId;
        _options = options;
        State = state;
        _rules = new ClickFraudRules(options.Fraud);
        _seen = new EventIdHorizon(options.DedupeHorizon, options.DedupeCapacity);
        var (ids, seenAt) = Unpack(state.Seen);
        _seen.Restore(state.Dedupe, ids, seenAt);
        state.Seen = null;
        _sessions = new AdSessions(state.SessionCounters, options.SessionTimeout, options.MaxSessions, options.FinishedSessionGrace);
        _sessions.Import(state.Sessions);
        foreach (var mark in state.InvalidMarks) _invalid[mark.Id] = mark.Reason;
    }

    public string CampaignId { get; }
    public AdCampaignState State { get; }

    /// <summary>The advertiser's settings; set by the grain from its own (separately written) state.</summary>
    public CampaignSettings? Settings { get; set; }

    /// <summary>
    /// Applies a batch. A batch at or below the partition's applied position was applied before (a replay after a
    /// crash): nothing changes, and the original decisions are returned so its outputs can be produced again. An event
    /// seen before in any other batch is a repeat: nothing changes either, and its recorded decision comes back marked
    /// <see cref="AdDecision.Repeat"/>.
    /// </summary>
    public (List<AdDecision> Decisions, int Applied, int Duplicates) Apply(AdBatch batch, DateTimeOffset now)
    {
        var decisions = new List<AdDecision>(batch.Events.Length);
        // At or below the partition's position: a replay. Its events this state has seen keep their original
        // decisions (so outputs are produced again, identically); events it has not seen are applied. Those exist
        // when an activation died after applying them in memory and a later delivery moved the position on a new
        // activation before the operator replayed: skipping the whole batch by position would lose them.
        var replay = State.Applied.TryGetValue(batch.Partition, out var position) && batch.Sequence <= position;
        int applied = 0, duplicates = 0;
        foreach (var e in batch.Events)
        {
            if (!_seen.TryAdd(e.EventId, now))
            {
                duplicates++;
                decisions.Add(Recall(e, repeat: !replay));
                continue;
            }
            applied++;
            decisions.Add(ApplyOne(e, now));
        }
        if (!replay) State.Applied[batch.Partition] = batch.Sequence;
        if (_sessions.Open > _options.MaxSessions + _options.MaxSessions / 8) _sessions.Expire(State.LastEventAt ?? now);
        return (decisions, applied, duplicates);
    }

    private AdDecision Recall(AdEvent e, bool repeat) => e.Kind switch
    {
        AdEventKind.Impression => new AdDecision(e.EventId, true, null, repeat),
        AdEventKind.Click when _invalid.TryGetValue(EventIdHorizon.Hash(e.EventId), out var reason) => new AdDecision(e.EventId, false, reason, repeat),
        AdEventKind.Click => new AdDecision(e.EventId, true, null, repeat),
        _ => new AdDecision(e.EventId, false, null, repeat),
    };

    private AdDecision ApplyOne(AdEvent e, DateTimeOffset now)
    {
        if (State.LastEventAt is not { } last || e.Timestamp > last) State.LastEventAt = e.Timestamp;
        var minute = Window(State.Minutes, _minutes, e.Timestamp, _options.MinuteWindows);
        var hour = Window(State.Hours, _hours, e.Timestamp, _options.HourWindows);

        string? reason = null;
        if (e.Kind == AdEventKind.Click)
        {
            var session = _sessions.Find(e.AdSessionId);
            var deviceKey = "d:" + e.DeviceId;
            var profileKey = "p:" + e.ProfileId;
            reason = _rules.Evaluate(new ClickContext(
                e.Timestamp,
                session?.ImpressionAt,
                CountLastMinute(deviceKey, e.Timestamp),
                CountLastMinute(profileKey, e.Timestamp),
                minute?.Counters.Impressions ?? 0,
                minute?.Counters.Clicks ?? 0,
                Baseline(minute, out var baselineClicks),
                baselineClicks));
            RecordClick(deviceKey, e.Timestamp);
            RecordClick(profileKey, e.Timestamp);
            if (reason is not null)
            {
                State.InvalidByReason[reason] = State.InvalidByReason.GetValueOrDefault(reason) + 1;
                _invalid[EventIdHorizon.Hash(e.EventId)] = reason;
                State.InvalidMarks.Add(new InvalidMark(EventIdHorizon.Hash(e.EventId), reason, now.UtcTicks));
            }
        }
        else if (e.Kind == AdEventKind.Impression)
        {
            RecordImpression(e.ProfileId, e.Timestamp);
        }
        _sessions.Observe(e.AdSessionId, e.Kind, e.Timestamp);

        var valid = reason is null;
        var billable = e.Kind == AdEventKind.Impression || (e.Kind == AdEventKind.Click && valid);
        var billed = billable ? e.CostMicros : 0;
        State.Totals.Add(e.Kind, valid, billed);
        minute?.Counters.Add(e.Kind, valid, billed);
        hour?.Counters.Add(e.Kind, valid, billed);
        if (billed > 0 && State.ExhaustedAt is null && Settings?.BudgetMicros is { } budget && State.Totals.SpendMicros >= budget)
            State.ExhaustedAt = e.Timestamp;
        return new AdDecision(e.EventId, billable, reason);
    }

    /// <summary>Impressions and valid clicks in the baseline minutes before <paramref name="current"/>.</summary>
    private long Baseline(AdWindowState? current, out long clicks)
    {
        clicks = 0;
        if (current is null) return 0;
        long impressions = 0;
        var from = current.Start - Minute * _options.Fraud.BaselineMinutes;
        foreach (var w in State.Minutes)
        {
            if (w.Start < from || w.Start >= current.Start) continue;
            impressions += w.Counters.Impressions;
            clicks += w.Counters.Clicks;
        }
        return impressions;
    }

    private int CountLastMinute(string key, DateTimeOffset at) =>
        State.RecentClicks.TryGetValue(key, out var times) ? times.CountWithin(at - Minute, at) : 0;

    private void RecordClick(string key, DateTimeOffset at) => Record(State.RecentClicks, key, at, Minute);

    private void RecordImpression(string profile, DateTimeOffset at) => Record(State.ProfileImpressions, profile, at, FrequencyRetention);

    private static void Record(Dictionary<string, RecentTimes> byKey, string key, DateTimeOffset at, TimeSpan keep)
    {
        // In the table's own storage: nothing else touches the table until this returns.
        ref var times = ref CollectionsMarshal.GetValueRefOrAddDefault(byKey, key, out _);
        times.Add(at);
        times.RemoveAtOrBefore(at - keep);
    }

    private TimeSpan FrequencyRetention =>
        Settings?.FrequencyCap is { } cap && cap.Window > _options.FrequencyRetention ? cap.Window : _options.FrequencyRetention;

    /// <summary>The window holding <paramref name="t"/> (kept in start order), created if needed; null when it is
    /// older than every window kept and there is no room for it.</summary>
    private static AdWindowState? Window(List<AdWindowState> windows, TumblingWindows assigner, DateTimeOffset t, int keep)
    {
        var w = assigner.Assign(t);
        var i = windows.Count - 1;
        while (i >= 0 && windows[i].Start > w.Start) i--;
        if (i >= 0 && windows[i].Start == w.Start) return windows[i];
        if (i < 0 && windows.Count >= keep) return null;
        var created = new AdWindowState { Start = w.Start, End = w.End };
        windows.Insert(i + 1, created);
        if (windows.Count > keep) windows.RemoveAt(0);
        return created;
    }

    /// <summary>Drops the copies <see cref="PrepareCheckpoint"/> made once they are written: the horizon and the
    /// sessions have them, and a campaign's are hundreds of kilobytes.</summary>
    public void ReleaseCheckpoint() => (State.Dedupe, State.Sessions) = (null, null);

    /// <summary>Copies the de-duplication memory into the state and forgets what has aged out (before a write).</summary>
    public void PrepareCheckpoint(DateTimeOffset now)
    {
        _seen.Expire(now);
        State.Dedupe = _seen.Pack();
        var cutoff = now.UtcTicks - _options.DedupeHorizon.Ticks;
        var expired = State.InvalidMarks.TakeWhile(m => m.SeenAt < cutoff).Count();
        foreach (var mark in State.InvalidMarks.Take(expired)) _invalid.Remove(mark.Id);
        State.InvalidMarks.RemoveRange(0, expired);

        if (State.LastEventAt is { } newest) _sessions.Expire(newest);
        State.Sessions = _sessions.Export();
        if (State.LastEventAt is { } last)
        {
            var keep = FrequencyRetention;
            foreach (var stale in State.ProfileImpressions.Where(p => p.Value.Last is not { } newest || newest <= last - keep).Select(p => p.Key).ToList())
                State.ProfileImpressions.Remove(stale);
            foreach (var stale in State.RecentClicks.Where(c => c.Value.Last is not { } newest || newest <= last - Minute).Select(c => c.Key).ToList())
                State.RecentClicks.Remove(stale);
        }
    }

    private static (long[]? Ids, long[]? SeenAt) Unpack(byte[]? bytes)
    {
        if (bytes is null) return (null, null);
        var n = bytes.Length / 16;
        var ids = new long[n];
        var seenAt = new long[n];
        for (var i = 0; i < n; i++)
        {
            ids[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 16));
            seenAt[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 16 + 8));
        }
        return (ids, seenAt);
    }

    /// <summary>Budget changed: exhaustion is judged again against the spend so far.</summary>
    public void OnSettingsChanged()
    {
        if (Settings?.BudgetMicros is { } budget && State.Totals.SpendMicros >= budget) State.ExhaustedAt ??= State.LastEventAt;
        else State.ExhaustedAt = null;
    }

    public bool HasActivity => State.Totals.Impressions + State.Totals.Clicks + State.Totals.InvalidClicks + State.Totals.Completes
        + State.Totals.Skips + State.Totals.FirstQuartiles + State.Totals.Midpoints + State.Totals.ThirdQuartiles > 0;

    /// <summary>
    /// May the campaign be shown to the profile at <paramref name="now"/>? Not when the budget is spent, nor when the
    /// profile has had the capped number of impressions in the cap's window.
    /// </summary>
    public EligibilityView Eligibility(string profileId, DateTimeOffset now)
    {
        var reasons = new List<string>();
        var cap = Settings?.FrequencyCap;
        var recent = 0;
        if (State.ProfileImpressions.TryGetValue(profileId, out var times))
        {
            var window = cap?.Window ?? _options.FrequencyRetention;
            recent = times.CountWithin(now - window, DateTimeOffset.MaxValue);
        }
        var budget = Budget(now);
        if (budget.Exhausted) reasons.Add($"budget exhausted: spent {budget.SpentMicros} of {budget.BudgetMicros} micros");
        if (cap is not null && recent >= cap.MaxImpressions)
            reasons.Add($"frequency cap reached: {recent} impressions in the last {cap.Window} (cap {cap.MaxImpressions})");
        return new EligibilityView(CampaignId, profileId, reasons.Count == 0, reasons, recent, cap, budget.RemainingMicros);
    }

    public BudgetView Budget(DateTimeOffset now)
    {
        var spent = State.Totals.SpendMicros;
        var budget = Settings?.BudgetMicros;
        var reference = State.LastEventAt ?? now;
        long lastHour = 0;
        foreach (var w in State.Minutes)
            if (w.End > reference - TimeSpan.FromHours(1)) lastHour += w.Counters.SpendMicros;
        return new BudgetView(budget, spent, budget is { } b ? Math.Max(0, b - spent) : null, budget is { } limit && spent >= limit, State.ExhaustedAt, lastHour);
    }

    public CampaignView View(DateTimeOffset now)
    {
        var totals = State.Totals.View();
        return new CampaignView(
            CampaignId, Settings?.Name, Settings is not null, totals, AdCountersState.Rates(totals), Budget(now), Settings?.FrequencyCap,
            InvalidReasons.All.ToDictionary(r => r, r => State.InvalidByReason.GetValueOrDefault(r)),
            new AdSessionSummary(State.SessionCounters.Sessions, State.SessionCounters.Completed, State.SessionCounters.Skipped,
                State.SessionCounters.Clicked, State.SessionCounters.MissingImpression, _sessions.Open),
            State.LastEventAt);
    }

    public AdSeriesView Series(bool hourly) => new(CampaignId, hourly ? "1h" : "1m",
        [.. (hourly ? State.Hours : State.Minutes).Select(w =>
        {
            var counts = w.Counters.View();
            return new AdWindowView(w.Start, w.End, counts, AdCountersState.Rates(counts));
        })]);
}
