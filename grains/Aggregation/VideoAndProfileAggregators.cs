using Keystone.Events;
using System.Text.Json.Serialization;
using Keystone.Storage;

namespace Keystone.Aggregation;

public sealed class VideoStatsState
{
    public string? Title { get; set; }
    public string? SeriesId { get; set; }
    public List<string> Genres { get; set; } = [];
    public List<VideoWindowState> Windows { get; set; } = [];
    public VideoCounters Totals { get; set; } = new();
    public string? TotalViewers { get; set; }
    /// <summary>The de-duplication memory (<see cref="EventIdHorizon.Pack"/>), present while a checkpoint is written.</summary>
    public byte[]? Dedupe { get; set; }

    /// <summary>The memory as states written before <see cref="Dedupe"/> hold it: read once, never written.</summary>
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenIds { get; set; }
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenAt { get; set; }
}

public sealed class VideoWindowState
{
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset End { get; set; }
    public VideoCounters Counters { get; set; } = new();
    public string? Viewers { get; set; }
}

public sealed class VideoCounters
{
    public long Starts { get; set; }
    public long Completions { get; set; }
    public long WatchMs { get; set; }
    public long Uhd4K { get; set; }
    public long Hd { get; set; }
    public long Sd { get; set; }
    public long OtherQuality { get; set; }

    public void Add(PlayContribution c)
    {
        if (c.Started)
        {
            Starts++;
            switch (c.Quality)
            {
                case "4K": Uhd4K++; break;
                case "HD": Hd++; break;
                case "SD": Sd++; break;
                default: OtherQuality++; break;
            }
        }
        if (c.Completed) Completions++;
        WatchMs += c.WatchMs;
    }

    public QualityMix Quality => new(Uhd4K, Hd, Sd, OtherQuality);
}

/// <summary>
/// A title's statistics per window and all time: starts, completions (a stop marked completed or at 95 % of the
/// duration), unique viewers (HyperLogLog: exact up to 16, about 1.6 % error beyond), watch time and the quality mix of
/// starts; and its catalogue facts from <c>content.*</c> events.
/// </summary>
public sealed class VideoStatsAggregator
{
    private readonly AggregationOptions _options;
    private readonly TumblingWindows _windows;
    private readonly EventIdHorizon _seen;
    private readonly Dictionary<DateTimeOffset, HyperLogLog> _viewers = [];
    private readonly HyperLogLog _totalViewers;

    public VideoStatsAggregator(AggregationOptions options, VideoStatsState state)
    {
        _options = options;
        _windows = options.Windows();
        State = state;
        _seen = new EventIdHorizon(options.DedupeHorizon, options.VideoDedupeCapacity);
        _seen.Restore(state.Dedupe, state.SeenIds, state.SeenAt);
        (state.SeenIds, state.SeenAt) = (null, null);
        _totalViewers = HyperLogLog.Import(state.TotalViewers);
        foreach (var w in state.Windows) _viewers[w.Start] = HyperLogLog.Import(w.Viewers);
        ReleaseCheckpoint();
    }

    /// <summary>
    /// Drops the id copies <see cref="PrepareCheckpoint"/> made once they are written (or read). The viewer sketches'
    /// copies stay: a window's sketch is exported again only while it is in memory.
    /// </summary>
    public void ReleaseCheckpoint() => State.Dedupe = null;

    public VideoStatsState State { get; }


    public void PrepareCheckpoint()
    {
        State.Dedupe = _seen.Pack();
        State.TotalViewers = _totalViewers.Export();
        foreach (var w in State.Windows)
            if (_viewers.TryGetValue(w.Start, out var hll)) w.Viewers = hll.Export();
    }

    public bool Apply(PlayContribution c, DateTimeOffset now)
    {
        if (!_seen.TryAdd(c.EventId, now)) return false;
        var window = Window(c.Timestamp);
        window.Counters.Add(c);
        State.Totals.Add(c);
        if (c.Started)
        {
            // A window older than the history kept was dropped as soon as it was made: the start counts in the totals only.
            if (_viewers.TryGetValue(window.Start, out var viewers)) viewers.Add(c.UserId);
            _totalViewers.Add(c.UserId);
        }
        if (c.Genre is { } genre && State.Genres.Count == 0) State.Genres.Add(genre);
        return true;
    }

    /// <summary><c>content.added</c> / <c>content.metadata_updated</c>: title, series and genres.</summary>
    public bool ApplyCatalog(KeystoneEvent e, DateTimeOffset now)
    {
        if (!_seen.TryAdd(e.EventId, now)) return false;
        if (e.Payload.GetString("title") is { } title) State.Title = title;
        if (e.Payload.GetString("series_id") is { } series) State.SeriesId = series;
        var genres = e.Payload.GetStringArray("genres");
        if (genres.Count > 0) State.Genres = [.. genres.Distinct().Take(16)];
        return true;
    }

    private VideoWindowState Window(DateTimeOffset ts)
    {
        var span = _windows.Assign(ts);
        var windows = State.Windows;
        for (var i = windows.Count - 1; i >= 0; i--)
            if (windows[i].Start == span.Start) return windows[i];
        var created = new VideoWindowState { Start = span.Start, End = span.End };
        // A loop, not a lambda: this runs per event, and a captured variable is an object per call.
        var index = windows.Count;
        while (index > 0 && windows[index - 1].Start > span.Start) index--;
        windows.Insert(index, created);
        _viewers[created.Start] = new HyperLogLog();
        while (windows.Count > _options.HistoryWindows)
        {
            _viewers.Remove(windows[0].Start);
            windows.RemoveAt(0);
        }
        return created;
    }

    public VideoStatsView View(string videoId) => new(
        videoId,
        State.Title,
        State.SeriesId,
        [.. State.Genres],
        State.Windows.Select(w => new VideoWindowStats(new TimeWindow(w.Start, w.End), w.Counters.Starts, w.Counters.Completions,
            _viewers.TryGetValue(w.Start, out var h) ? h.Count() : 0, w.Counters.WatchMs, w.Counters.Quality)).ToArray(),
        new VideoTotals(State.Totals.Starts, State.Totals.Completions, _totalViewers.Count(), State.Totals.WatchMs, State.Totals.Quality));
}

public sealed class ProfileState
{
    public string? UserId { get; set; }
    public long Plays { get; set; }
    public long WatchMs { get; set; }
    public DateTimeOffset? LastActivity { get; set; }
    public List<ProfileWindowState> Windows { get; set; } = [];

    /// <summary>Genre → score (minutes of watch time, decayed) as of <see cref="GenreScore.At"/>.</summary>
    public Dictionary<string, GenreScore> Genres { get; set; } = [];

    /// <summary>The de-duplication memory (<see cref="EventIdHorizon.Pack"/>), present while a checkpoint is written.</summary>
    public byte[]? Dedupe { get; set; }

    /// <summary>The memory as states written before <see cref="Dedupe"/> hold it: read once, never written.</summary>
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenIds { get; set; }
    [JsonConverter(typeof(Int64ArrayBase64Converter)), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? SeenAt { get; set; }
}

public sealed class ProfileWindowState
{
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset End { get; set; }
    public long Plays { get; set; }
    public long WatchMs { get; set; }
}

public sealed class GenreScore
{
    public double Score { get; set; }
    public DateTimeOffset At { get; set; }
}

/// <summary>
/// A profile's activity and genre affinity: for each genre, watch minutes decayed exponentially with the configured
/// half-life (in event time), so recent taste outweighs old.
/// </summary>
public sealed class ProfileAggregator
{
    private readonly AggregationOptions _options;
    private readonly TumblingWindows _windows;
    private readonly EventIdHorizon _seen;

    public ProfileAggregator(AggregationOptions options, ProfileState state)
    {
        _options = options;
        _windows = options.Windows();
        State = state;
        _seen = new EventIdHorizon(options.DedupeHorizon, options.UserDedupeCapacity);
        _seen.Restore(state.Dedupe, state.SeenIds, state.SeenAt);
        (state.SeenIds, state.SeenAt) = (null, null);
        ReleaseCheckpoint();
    }

    public ProfileState State { get; }


    public void PrepareCheckpoint() => State.Dedupe = _seen.Pack();

    /// <summary>Drops the copies <see cref="PrepareCheckpoint"/> made once they are written (or read): the horizon has them.</summary>
    public void ReleaseCheckpoint() => State.Dedupe = null;

    /// <summary>Applies a contribution whose genres the caller resolved (from the event or the video's catalogue entry).</summary>
    public bool Apply(PlayContribution c, IReadOnlyList<string> genres, DateTimeOffset now)
    {
        if (!_seen.TryAdd(c.EventId, now)) return false;
        State.UserId ??= c.UserId;
        if (c.Started) State.Plays++;
        State.WatchMs += c.WatchMs;
        if (State.LastActivity is not { } l || c.Timestamp > l) State.LastActivity = c.Timestamp;

        var span = _windows.Assign(c.Timestamp);
        var windows = State.Windows;
        ProfileWindowState? window = null;
        // Loops, not lambdas: this runs per event, and a captured variable is an object per call.
        for (var i = windows.Count - 1; i >= 0 && window is null; i--)
            if (windows[i].Start == span.Start) window = windows[i];
        if (window is null)
        {
            window = new ProfileWindowState { Start = span.Start, End = span.End };
            var index = windows.Count;
            while (index > 0 && windows[index - 1].Start > span.Start) index--;
            windows.Insert(index, window);
            while (State.Windows.Count > _options.HistoryWindows) State.Windows.RemoveAt(0);
        }
        if (c.Started) window.Plays++;
        window.WatchMs += c.WatchMs;

        if (c.WatchMs > 0)
        {
            // Watch time is shared equally among the title's genres.
            var minutes = c.WatchMs / 60_000.0 / Math.Max(1, genres.Count);
            foreach (var genre in genres)
            {
                if (!State.Genres.TryGetValue(genre, out var score))
                {
                    if (State.Genres.Count >= 64) continue;
                    State.Genres[genre] = score = new GenreScore { At = c.Timestamp };
                }
                // An older event (arriving late) is decayed to the score's time, so arrival order does not change the score.
                score.Score = c.Timestamp >= score.At
                    ? Decay(score.Score, score.At, c.Timestamp) + minutes
                    : score.Score + Decay(minutes, c.Timestamp, score.At);
                if (c.Timestamp > score.At) score.At = c.Timestamp;
            }
        }
        return true;
    }

    private double Decay(double score, DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from) return score;
        return score * Math.Pow(0.5, (to - from) / _options.AffinityHalfLife);
    }

    /// <summary>Genres by score decayed to <paramref name="asOf"/> (the profile's last activity when not given).</summary>
    public IReadOnlyList<GenreAffinity> TopGenres(int limit, DateTimeOffset? asOf = null)
    {
        var at = asOf ?? State.LastActivity ?? DateTimeOffset.UtcNow;
        return State.Genres
            .Select(kv => new GenreAffinity(kv.Key, Math.Round(Decay(kv.Value.Score, kv.Value.At, at), 4)))
            .OrderByDescending(g => g.Score)
            .ThenBy(g => g.Genre, StringComparer.Ordinal)
            .Take(limit)
            .ToArray();
    }

    /// <summary>The profile's score for one genre, decayed to its last activity; 0 when it has none.</summary>
    public double Affinity(string genre) =>
        State.Genres.TryGetValue(genre, out var score) ? Math.Round(Decay(score.Score, score.At, State.LastActivity ?? score.At), 4) : 0;

    public ProfileView View(string profileId) => new(
        profileId, State.UserId, State.Plays, State.WatchMs, State.LastActivity,
        State.Windows.Select(w => new ProfileWindowStats(new TimeWindow(w.Start, w.End), w.Plays, w.WatchMs)).ToArray(),
        TopGenres(10));
}
