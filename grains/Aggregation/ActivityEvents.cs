using System.Security.Cryptography;
using System.Text;
using Keystone.Events;

namespace Keystone.Aggregation;

/// <summary>The events the aggregations emit, in the same envelope (their schemas ship with the others).</summary>
public static class ActivityEvents
{
    public const string WindowType = "user.activity.window";
    public const string TriggerType = "recommendation.update_requested";
    private static readonly EventSource Source = new("keystone-aggregations");

    /// <summary>A window result. Its id is derived from its content, so a result emitted twice (at-least-once) is recognisably the same.</summary>
    public static KeystoneEvent Window(WindowResult r, int partition, DateTimeOffset now)
    {
        var s = r.Stats;
        var payload = Payload.Create(
            ("user_id", r.UserId),
            ("window_start", EventJson.FormatTimestamp(s.Window.Start)),
            ("window_end", EventJson.FormatTimestamp(s.Window.End)),
            ("plays", s.Plays), ("pauses", s.Pauses), ("resumes", s.Resumes), ("seeks", s.Seeks), ("stops", s.Stops),
            ("watch_time_ms", s.WatchMs), ("distinct_videos", s.DistinctVideos), ("devices", s.Devices),
            ("last_activity", s.LastActivity is { } l ? EventJson.FormatTimestamp(l) : null),
            ("late_update", r.LateUpdate));
        var id = DeterministicId(WindowType, payload.ToString());
        return new KeystoneEvent(id, WindowType, now, "1.0", Source, payload, EventMetadata.Of(("partition", partition.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }

    public static KeystoneEvent Trigger(WindowResult r, int partition, DateTimeOffset now)
    {
        var payload = Payload.Create(
            ("user_id", r.UserId),
            ("reason", "window_closed"),
            ("window_end", EventJson.FormatTimestamp(r.Stats.Window.End)));
        return new KeystoneEvent(DeterministicId(TriggerType, payload.ToString()), TriggerType, now, "1.0", Source, payload,
            EventMetadata.Of(("partition", partition.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }

    private static Guid DeterministicId(string kind, string content)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(kind + "\n" + content));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50); // name-based UUID (version 5 layout)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }
}
