using Keystone.Events;
using System.Text.Json.Serialization;
using Keystone.Storage;

namespace Keystone.Aggregation;

/// <summary>Checkpointed state of a user's activity: windows, session, totals, play cursors and idempotency memory.</summary>
public sealed class UserActivityState
{
    public List<UserWindowState> Windows { get; set; } = [];
    public SessionState? Session { get; set; }
    public TotalsState Totals { get; set; } = new();
    public Dictionary<string, PlaybackCursor> Playback { get; set; } = [];
    public DateTimeOffset? LastActivity { get; set; }
    /// <summary>The de-duplication memory (<see cref="EventIdHorizon.Pack"/>), present while a checkpoint is written.</summary>
    public byte[]? Dedupe { get; set; }

    /// <summary>The memory as states written before <see cref="Dedupe"/> hold it: read once, never written.</summary>
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenIds { get; set; }
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenAt { get; set; }

    /// <summary>
    /// The watch time each recent playback event contributed, by event id: a repeat of the event (a replay or a
    /// redelivery) returns the same contribution, so videos and profiles see the same facts whichever grain
    /// checkpointed when. The rest of a contribution is the event's own (its ids, type, time, quality, completion), so
    /// it is rebuilt from the repeat: only what depended on this user's state at the first application is kept, and
    /// only when it is not zero (a remembered playback event without an entry contributed no watch time).
    /// </summary>
    [JsonConverter(typeof(ContributedWatchPackConverter))]
    public List<ContributedWatch> Watches { get; set; } = [];

    /// <summary>Written before <see cref="Watches"/> existed (whole event ids, zeros too); read once, never written.</summary>
    [JsonConverter(typeof(ContributedWatchListConverter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<WholeIdWatch>? Contributed { get; set; }

    /// <summary>Written before <see cref="Contributed"/> existed (whole contributions); read once, then empty.</summary>
    public List<PlayContribution>? RecentContributions { get; set; }
}

/// <summary>
/// What a playback event contributed that the event itself does not say, keyed by the event id's 64-bit hash (the one
/// the de-duplication memory keeps): 16 bytes in memory, about 10 in a checkpoint.
/// </summary>
public readonly record struct ContributedWatch(long EventHash, long WatchMs);

/// <summary>A contribution as states written before the hashed form hold it.</summary>
public readonly record struct WholeIdWatch(Guid EventId, long WatchMs);

public sealed class UserWindowState
{
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset End { get; set; }
    public long Plays { get; set; }
    public long Pauses { get; set; }
    public long Resumes { get; set; }
    public long Seeks { get; set; }
    public long Stops { get; set; }
    public long WatchMs { get; set; }
    public List<string> Videos { get; set; } = [];
    public List<string> Devices { get; set; } = [];
    public DateTimeOffset? LastActivity { get; set; }
    public bool Fired { get; set; }
}

public sealed class SessionState
{
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset LastActivity { get; set; }
    public long Events { get; set; }
    public long Plays { get; set; }
    public long WatchMs { get; set; }
    public List<string> Devices { get; set; } = [];
}

public sealed class TotalsState
{
    public long Events { get; set; }
    public long Plays { get; set; }
    public long Pauses { get; set; }
    public long Resumes { get; set; }
    public long Seeks { get; set; }
    public long Stops { get; set; }
    public long WatchMs { get; set; }
    public long Sessions { get; set; }
}

/// <summary>Where a device's player was at its last event: what turns the next position into watch time.</summary>
public sealed class PlaybackCursor
{
    public string VideoId { get; set; } = "";
    public bool Playing { get; set; }
    public long PositionMs { get; set; }
    public DateTimeOffset At { get; set; }
}

/// <summary>
/// Watch time from playback events: the playhead advance between a play/resume and the next pause/seek/stop on the
/// same device and title, capped by the event-time elapsed (plus a second) so a seek reported as a stop cannot invent
/// hours. Shared by the activity windows and the graph's WATCHES weight.
/// </summary>
public static class WatchTime
{
    /// <summary>Moves the device's cursor with one playback event; returns the watch time (ms) the event ends.</summary>
    public static long Step(Dictionary<string, PlaybackCursor> cursors, int maxDevices, string eventType, string device, string? videoId, long position, long? seekFrom, DateTimeOffset ts)
    {
        long watch;
        switch (eventType)
        {
            case "video.play.started":
                Cursor(cursors, maxDevices, device).Set(videoId, playing: true, position, ts);
                return 0;
            case "video.play.resumed":
                watch = Advance(cursors, device, videoId, position, ts);
                Cursor(cursors, maxDevices, device).Set(videoId, playing: true, position, ts);
                return watch;
            case "video.play.paused":
            case "video.play.stopped":
                watch = Advance(cursors, device, videoId, position, ts);
                Cursor(cursors, maxDevices, device).Set(videoId, playing: false, position, ts);
                return watch;
            case "video.play.seeked":
                // Watching ran up to where the seek started; playing continues from where it landed.
                watch = Advance(cursors, device, videoId, seekFrom ?? position, ts);
                var cursor = Cursor(cursors, maxDevices, device);
                cursor.Set(videoId, cursor.Playing && cursor.VideoId == videoId, position, ts);
                return watch;
            default:
                return 0;
        }
    }

    private static long Advance(Dictionary<string, PlaybackCursor> cursors, string device, string? videoId, long position, DateTimeOffset ts)
    {
        if (!cursors.TryGetValue(device, out var cursor) || !cursor.Playing || cursor.VideoId != videoId) return 0;
        var advanced = position - cursor.PositionMs;
        if (advanced <= 0) return 0;
        var elapsed = (long)(ts - cursor.At).TotalMilliseconds;
        // Out-of-order arrivals have no reliable elapsed time: trust the playhead then.
        return elapsed < 0 ? advanced : Math.Min(advanced, elapsed + 1_000);
    }

    private static PlaybackCursor Cursor(Dictionary<string, PlaybackCursor> cursors, int maxDevices, string device)
    {
        if (!cursors.TryGetValue(device, out var cursor))
        {
            if (cursors.Count >= maxDevices)
                cursors.Remove(cursors.MinBy(kv => kv.Value.At).Key);
            cursors[device] = cursor = new PlaybackCursor();
        }
        return cursor;
    }
}

/// <summary>
/// A user's windowed activity (Flink's keyed window state for key = user), as plain logic. Watch time is the playhead
/// advance between a play/resume and the next pause/seek/stop on the same device and title, capped by the event-time
/// elapsed (plus a second) so a seek reported as a stop cannot invent hours. It is credited to the window of the event
/// that ends the interval. Events apply in arrival order, which is the user's order (one partition per user).
/// </summary>
public sealed class UserActivityAggregator
{
    private const int MaxVideosPerWindow = 256;
    private const int MaxDevices = 16;

    private readonly string _userId;
    private readonly AggregationOptions _options;
    private readonly TumblingWindows _windows;
    private readonly EventIdHorizon _seen;

    // Looked up only for repeats: a list (the state's own, so a checkpoint copies nothing) searched from the newest,
    // with an index built once a busy user holds more than a few dozen.
    private const int UnindexedContributions = 64;
    private Dictionary<long, long>? _contributionIndex;
    private long _forgottenAtLastLook = -1;

    public UserActivityAggregator(string userId, AggregationOptions options, UserActivityState state)
    {
        _userId = userId;
        _options = options;
        _windows = options.Windows();
        State = state;
        _seen = new EventIdHorizon(options.DedupeHorizon, options.UserDedupeCapacity);
        _seen.Restore(state.Dedupe, state.SeenIds, state.SeenAt);
        (state.SeenIds, state.SeenAt) = (null, null);
        // Older forms, oldest first as they were written: the list stays in the order its ids were remembered.
        if (state.RecentContributions is { } written)
        {
            foreach (var c in written) Remember(c.EventId, c.WatchMs);
            state.RecentContributions = null;
        }
        if (state.Contributed is { } whole)
        {
            foreach (var c in whole) Remember(c.EventId, c.WatchMs);
            state.Contributed = null;
        }
        ReleaseCheckpoint();
    }

    public UserActivityState State { get; }

    public int RememberedIds => _seen.Count;

    /// <summary>Copies the idempotency memory into the state before it is written.</summary>
    public void PrepareCheckpoint() => State.Dedupe = _seen.Pack();

    /// <summary>Drops the copies <see cref="PrepareCheckpoint"/> made once they are written (or read): the horizon has them.</summary>
    public void ReleaseCheckpoint() => State.Dedupe = null;

    /// <summary>
    /// Applies one event and gives its contribution (playback events only). A repeat changes nothing and returns
    /// false, with the contribution the first application produced.
    /// </summary>
    public bool Apply(KeystoneEvent e, DateTimeOffset now, out PlayContribution? contribution)
    {
        contribution = null;
        ForgetOldContributions(now);
        if (!_seen.TryAdd(e.EventId, now))
        {
            contribution = Contribution(e, ContributedWatchMs(EventIdHorizon.Hash(e.EventId)));
            return false;
        }

        var ts = e.Timestamp;
        var window = Window(ts);
        var device = e.Payload.GetString("device_id") ?? e.Source.DeviceType ?? "unknown";
        var videoId = e.Payload.GetString("video_id");
        var position = e.Payload.GetInt64("position_ms") ?? 0;
        var totals = State.Totals;
        totals.Events++;
        var started = false;

        var watch = WatchTime.Step(State.Playback, MaxDevices, e.EventType, device, videoId, position, e.Payload.GetInt64("from_position_ms"), ts);
        switch (e.EventType)
        {
            case "video.play.started":
                window.Plays++;
                totals.Plays++;
                started = true;
                break;
            case "video.play.resumed":
                window.Resumes++;
                totals.Resumes++;
                break;
            case "video.play.paused":
                window.Pauses++;
                totals.Pauses++;
                break;
            case "video.play.seeked":
                window.Seeks++;
                totals.Seeks++;
                break;
            case "video.play.stopped":
                window.Stops++;
                totals.Stops++;
                break;
        }

        window.WatchMs += watch;
        totals.WatchMs += watch;
        if (videoId is not null && window.Videos.Count < MaxVideosPerWindow && !window.Videos.Contains(videoId)) window.Videos.Add(videoId);
        if (window.Devices.Count < MaxDevices && !window.Devices.Contains(device)) window.Devices.Add(device);
        if (window.LastActivity is not { } wl || ts > wl) window.LastActivity = ts;
        if (State.LastActivity is not { } l || ts > l) State.LastActivity = ts;
        TrackSession(ts, device, started, watch);

        contribution = Contribution(e, watch);
        if (contribution is not null) Remember(e.EventId, watch);
        return true;
    }

    /// <summary>A playback event's contribution: everything but the watch time comes from the event itself.</summary>
    private PlayContribution? Contribution(KeystoneEvent e, long watch)
    {
        var videoId = e.Payload.GetString("video_id");
        if (videoId is null || !e.EventType.StartsWith("video.play.", StringComparison.Ordinal)) return null;
        var completed = false;
        if (e.EventType == "video.play.stopped")
        {
            var duration = e.Payload.GetInt64("duration_ms") ?? 0;
            completed = e.Payload.GetBoolean("completed") == true || (duration > 0 && (e.Payload.GetInt64("position_ms") ?? 0) >= duration * 95 / 100);
        }
        return new PlayContribution(e.EventId, e.EventType, e.Timestamp, _userId, videoId, e.Payload.GetString("profile_id"),
            watch, e.EventType == "video.play.started", completed, e.Payload.GetString("quality"), e.Payload.GetString("genre"));
    }

    private void Remember(Guid eventId, long watch)
    {
        if (watch == 0) return;
        var hash = EventIdHorizon.Hash(eventId);
        State.Watches.Add(new ContributedWatch(hash, watch));
        if (_contributionIndex is not null) _contributionIndex[hash] = watch;
    }

    private long ContributedWatchMs(long hash)
    {
        var recent = State.Watches;
        if (recent.Count > UnindexedContributions)
        {
            if (_contributionIndex is null)
            {
                _contributionIndex = new Dictionary<long, long>(recent.Count);
                foreach (var c in recent) _contributionIndex[c.EventHash] = c.WatchMs;
            }
            return _contributionIndex.TryGetValue(hash, out var watch) ? watch : 0;
        }
        for (var i = recent.Count - 1; i >= 0; i--)
            if (recent[i].EventHash == hash) return recent[i].WatchMs;
        return 0;
    }

    // Contributions are kept as long as their event ids are. Both are in the order the ids were remembered, so the
    // forgotten ones are a prefix of the list, and only a forgetting since the last look can have made one.
    private void ForgetOldContributions(DateTimeOffset now)
    {
        _seen.Expire(now);
        if (_seen.Forgotten == _forgottenAtLastLook) return;
        _forgottenAtLastLook = _seen.Forgotten;
        var recent = State.Watches;
        var stale = 0;
        while (stale < recent.Count && !_seen.Contains(recent[stale].EventHash)) stale++;
        if (stale == 0) return;
        recent.RemoveRange(0, stale);
        _contributionIndex = null;
    }

    private void TrackSession(DateTimeOffset ts, string device, bool started, long watch)
    {
        var session = State.Session;
        if (session is null || ts - session.LastActivity > _options.SessionGap)
        {
            // An event older than the session's start is late, not a new session.
            if (session is not null && ts < session.Start)
            {
                session.Events++;
                return;
            }
            State.Session = session = new SessionState { Start = ts, LastActivity = ts };
            State.Totals.Sessions++;
        }
        session.Events++;
        if (started) session.Plays++;
        session.WatchMs += watch;
        if (ts > session.LastActivity) session.LastActivity = ts;
        if (session.Devices.Count < MaxDevices && !session.Devices.Contains(device)) session.Devices.Add(device);
    }

    private UserWindowState Window(DateTimeOffset ts)
    {
        var span = _windows.Assign(ts);
        var windows = State.Windows;
        for (var i = windows.Count - 1; i >= 0; i--)
            if (windows[i].Start == span.Start) return windows[i];
        var created = new UserWindowState { Start = span.Start, End = span.End };
        // Loops rather than lambdas in this file: these run per event, and a captured variable is an object per call.
        var index = windows.Count;
        while (index > 0 && windows[index - 1].Start > span.Start) index--;
        windows.Insert(index, created);
        return created;
    }

    /// <summary>Fires the windows the watermark has reached and forgets those beyond history and lateness.</summary>
    public List<WindowResult> Fire(DateTimeOffset watermark)
    {
        var fired = new List<WindowResult>();
        foreach (var w in State.Windows)
        {
            if (w.Fired || w.End > watermark) continue;
            w.Fired = true;
            fired.Add(new WindowResult(_userId, ToStats(w), LateUpdate: false));
        }
        Trim(watermark);
        return fired;
    }

    /// <summary>Results for fired windows that late events just changed (Flink's late firing).</summary>
    public WindowResult Reemit(DateTimeOffset windowStart) =>
        new(_userId, ToStats(State.Windows.Single(w => w.Start == windowStart)), LateUpdate: true);

    public DateTimeOffset WindowStart(DateTimeOffset timestamp) => _windows.Assign(timestamp).Start;

    public bool IsFired(DateTimeOffset timestamp)
    {
        var start = _windows.Assign(timestamp).Start;
        foreach (var w in State.Windows)
            if (w.Start == start && w.Fired) return true;
        return false;
    }

    /// <summary>The earliest end of a window that has not fired: when the operator should call back.</summary>
    public DateTimeOffset? NextWindowEnd
    {
        get
        {
            DateTimeOffset? next = null;
            foreach (var w in State.Windows)
                if (!w.Fired && (next is null || w.End < next)) next = w.End;
            return next;
        }
    }

    private void Trim(DateTimeOffset watermark)
    {
        var windows = State.Windows;
        while (windows.Count > _options.HistoryWindows && windows[0].Fired && windows[0].End + _options.AllowedLateness <= watermark)
            windows.RemoveAt(0);
    }

    public static UserWindowStats ToStats(UserWindowState w) =>
        new(new TimeWindow(w.Start, w.End), w.Plays, w.Pauses, w.Resumes, w.Seeks, w.Stops, w.WatchMs, w.Videos.Count, [.. w.Devices], w.LastActivity, w.Fired);

    public UserActivityView View(DateTimeOffset? from, DateTimeOffset? to)
    {
        var windows = State.Windows
            .Where(w => (from is null || w.End > from) && (to is null || w.Start < to))
            .Select(ToStats)
            .ToArray();
        var s = State.Session;
        var t = State.Totals;
        return new UserActivityView(
            _userId,
            windows,
            s is null ? null : new SessionView(s.Start, s.LastActivity, s.Events, s.Plays, s.WatchMs, [.. s.Devices]),
            new UserTotals(t.Events, t.Plays, t.Pauses, t.Resumes, t.Seeks, t.Stops, t.WatchMs, t.Sessions),
            State.LastActivity);
    }
}

internal static class PlaybackCursorExtensions
{
    public static void Set(this PlaybackCursor cursor, string? videoId, bool playing, long position, DateTimeOffset at)
    {
        cursor.VideoId = videoId ?? "";
        cursor.Playing = playing;
        cursor.PositionMs = position;
        cursor.At = at;
    }
}
