using Keystone.Events;

namespace Keystone.IntegrationTests.Aggregation;

/// <summary>Scripted playback with answers worked out by hand, so tests can demand exact totals.</summary>
public sealed class PlaybackScript
{
    public List<KeystoneEvent> Events { get; } = [];
    public Dictionary<string, Totals> Users { get; } = [];
    public Dictionary<string, Totals> Videos { get; } = [];
    public Dictionary<string, Totals> Profiles { get; } = [];
    public Dictionary<string, HashSet<string>> Viewers { get; } = [];

    public sealed class Totals
    {
        public long Plays, Pauses, Resumes, Stops, WatchMs, Completions;
    }

    /// <summary>
    /// start at t (position 0) → pause at t+30 s (position 30 s: 30 s watched) → resume at t+70 s → stop at t+100 s
    /// (position 60 s: 30 s more). One play, one pause, one resume, one stop, 60 s watched, not completed.
    /// </summary>
    public void Session(string user, string profile, string device, string video, DateTimeOffset t, string quality = "HD", string genre = "drama")
    {
        KeystoneEvent Play(string type, DateTimeOffset at, long position) => new(
            Guid.NewGuid(), type, at, "1.0", new EventSource("playback-service", "smart_tv", "us-east-1"),
            Payload.Create(("user_id", user), ("profile_id", profile), ("video_id", video), ("device_id", device),
                ("position_ms", position), ("quality", quality), ("genre", genre), ("duration_ms", 3_600_000L)),
            EventMetadata.Empty);

        Events.Add(Play("video.play.started", t, 0));
        Events.Add(Play("video.play.paused", t.AddSeconds(30), 30_000));
        Events.Add(Play("video.play.resumed", t.AddSeconds(70), 30_000));
        Events.Add(Play("video.play.stopped", t.AddSeconds(100), 60_000));

        foreach (var totals in new[] { Get(Users, user), Get(Videos, video), Get(Profiles, profile) })
        {
            totals.Plays++;
            totals.Pauses++;
            totals.Resumes++;
            totals.Stops++;
            totals.WatchMs += 60_000;
        }
        if (!Viewers.TryGetValue(video, out var viewers)) Viewers[video] = viewers = [];
        viewers.Add(user);
    }

    private static Totals Get(Dictionary<string, Totals> map, string key)
    {
        if (!map.TryGetValue(key, out var t)) map[key] = t = new Totals();
        return t;
    }

    /// <summary>One event per partition far enough ahead to move every partition's watermark past the script.</summary>
    public static List<KeystoneEvent> Flush(int partitions, DateTimeOffset at)
    {
        var byPartition = new Dictionary<int, KeystoneEvent>();
        for (var i = 0; byPartition.Count < partitions; i++)
        {
            var user = $"flush-{i}";
            var p = Partitioning.PartitionOf(user, partitions);
            if (byPartition.ContainsKey(p)) continue;
            byPartition[p] = new KeystoneEvent(Guid.NewGuid(), "video.play.started", at, "1.0", new EventSource("playback-service"),
                Payload.Create(("user_id", user), ("profile_id", user + "-p"), ("video_id", "flush-video"), ("position_ms", 0), ("quality", "SD")),
                EventMetadata.Empty);
        }
        return [.. byPartition.Values];
    }
}
