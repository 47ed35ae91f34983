using System.Globalization;
using System.Text;
using System.Text.Json;
using Keystone.Events;

namespace Keystone.Lake;

/// <summary>One row of the <c>events</c> table: the envelope and the common payload fields typed, the rest as JSON.</summary>
public sealed record EventRow(
    string EventId, string EventType, DateTime Timestamp, string Version,
    string Service, string? DeviceType, string? Region,
    string? UserId, string? ProfileId, string? VideoId, string? DeviceId, string? CampaignId, string? AdSessionId,
    string? Quality, long? PositionMs, long? CostMicros,
    string Payload, string Metadata, int Partition);

/// <summary>One row of the <c>activity_windows</c> table: a <c>user.activity.window</c> result.</summary>
public sealed record WindowRow(
    string EventId, DateTime EmittedAt, string UserId, DateTime WindowStart, DateTime WindowEnd,
    long Plays, long Pauses, long Resumes, long Seeks, long Stops, long WatchTimeMs, long DistinctVideos,
    string Devices, DateTime? LastActivity, bool LateUpdate, int Partition);

/// <summary>
/// The lake's two tables: column names and DuckDB types (the Parquet files carry the same), and how an event maps to a
/// row. Timestamps are UTC with microsecond precision (DuckDB's TIMESTAMP).
/// </summary>
public static class LakeSchema
{
    public static readonly (string Name, string Type)[] EventColumns =
    [
        ("event_id", "VARCHAR"), ("event_type", "VARCHAR"), ("timestamp", "TIMESTAMP"), ("version", "VARCHAR"),
        ("service", "VARCHAR"), ("device_type", "VARCHAR"), ("region", "VARCHAR"),
        ("user_id", "VARCHAR"), ("profile_id", "VARCHAR"), ("video_id", "VARCHAR"), ("device_id", "VARCHAR"),
        ("campaign_id", "VARCHAR"), ("ad_session_id", "VARCHAR"), ("quality", "VARCHAR"),
        ("position_ms", "BIGINT"), ("cost_micros", "BIGINT"),
        ("payload", "VARCHAR"), ("metadata", "VARCHAR"), ("partition", "INTEGER"),
    ];

    public static readonly (string Name, string Type)[] WindowColumns =
    [
        ("event_id", "VARCHAR"), ("emitted_at", "TIMESTAMP"), ("user_id", "VARCHAR"),
        ("window_start", "TIMESTAMP"), ("window_end", "TIMESTAMP"),
        ("plays", "BIGINT"), ("pauses", "BIGINT"), ("resumes", "BIGINT"), ("seeks", "BIGINT"), ("stops", "BIGINT"),
        ("watch_time_ms", "BIGINT"), ("distinct_videos", "BIGINT"), ("devices", "VARCHAR"),
        ("last_activity", "TIMESTAMP"), ("late_update", "BOOLEAN"), ("partition", "INTEGER"),
    ];

    public const string EventsTable = "events";
    public const string WindowsTable = "activity_windows";

    /// <summary>The column that orders a table's files (row groups' min/max prune sub-hour ranges) and that [from, to) filters.</summary>
    public static string TimeColumn(string table) => table == WindowsTable ? "window_end" : "timestamp";

    public static string CreateTable(string name, (string Name, string Type)[] columns) =>
        $"CREATE TABLE {name} ({string.Join(", ", columns.Select(c => $"\"{c.Name}\" {c.Type}"))})";

    /// <summary>An empty relation of the table's shape, for a view over hours without files.</summary>
    public static string EmptySelect((string Name, string Type)[] columns) =>
        $"SELECT {string.Join(", ", columns.Select(c => $"NULL::{c.Type} AS \"{c.Name}\""))} WHERE false";

    public static EventRow Map(KeystoneEvent e, int partition)
    {
        var p = e.Payload;
        return new EventRow(
            e.EventId.ToString("D"), e.EventType, e.Timestamp.UtcDateTime, e.Version,
            e.Source.Service, e.Source.DeviceType, e.Source.Region,
            p.GetString("user_id"), p.GetString("profile_id"), p.GetString("video_id"), p.GetString("device_id"),
            p.GetString("campaign_id"), p.GetString("ad_session_id"), p.GetString("quality"),
            p.GetInt64("position_ms"), p.GetInt64("cost_micros"),
            p.ToString(), MetadataJson(e.Metadata), partition);
    }

    /// <summary>The window result an event carries, or null when it is not a well-formed <c>user.activity.window</c>.</summary>
    public static WindowRow? MapWindow(KeystoneEvent e, int partition)
    {
        if (e.EventType != "user.activity.window") return null;
        var p = e.Payload;
        if (p.GetString("user_id") is not { } user
            || !EventJson.TryParseTimestamp(p.GetString("window_start") ?? "", out var start)
            || !EventJson.TryParseTimestamp(p.GetString("window_end") ?? "", out var end)) return null;
        DateTime? last = EventJson.TryParseTimestamp(p.GetString("last_activity") ?? "", out var l) ? l.UtcDateTime : null;
        return new WindowRow(
            e.EventId.ToString("D"), e.Timestamp.UtcDateTime, user, start.UtcDateTime, end.UtcDateTime,
            p.GetInt64("plays") ?? 0, p.GetInt64("pauses") ?? 0, p.GetInt64("resumes") ?? 0, p.GetInt64("seeks") ?? 0, p.GetInt64("stops") ?? 0,
            p.GetInt64("watch_time_ms") ?? 0, p.GetInt64("distinct_videos") ?? 0,
            JsonSerializer.Serialize(p.GetStringArray("devices")), last, p.GetBoolean("late_update") ?? false, partition);
    }

    public static string MetadataJson(EventMetadata metadata)
    {
        if (metadata.Count == 0) return "{}";
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (k, v) in metadata) w.WriteString(k, v);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The event a row was made from: what replay publishes for an hour whose raw segments are gone.</summary>
    public static KeystoneEvent ToEvent(string eventId, string eventType, DateTime timestamp, string version,
        string service, string? deviceType, string? region, string payload, string metadata)
    {
        var entries = new List<KeyValuePair<string, string>>();
        using (var doc = JsonDocument.Parse(metadata))
            foreach (var prop in doc.RootElement.EnumerateObject()) entries.Add(new(prop.Name, prop.Value.GetString() ?? ""));
        return new KeystoneEvent(Guid.Parse(eventId), eventType, new DateTimeOffset(DateTime.SpecifyKind(timestamp, DateTimeKind.Utc)), version,
            new EventSource(service, deviceType, region), Payload.Parse(payload), EventMetadata.From(entries));
    }

    public static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
}
