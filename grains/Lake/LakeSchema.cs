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

    // The same mapping in DuckDB's SQL, for the fast path that lets DuckDB parse the JSON lines itself. A string column
    // is filled only from a JSON string and an integer column only from a JSON integer, as Payload.GetString/GetInt64 do.
    private static string Text(string field) => $"CASE WHEN json_type(payload, '$.{field}') = 'VARCHAR' THEN payload->>'$.{field}' END";

    private static string Integer(string field) => $"CASE WHEN json_type(payload, '$.{field}') IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(payload->>'$.{field}' AS BIGINT) END";

    private static string Utc(string expression) => $"(TRY_CAST({expression} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')";

    private static readonly string[] TextFields = ["user_id", "profile_id", "video_id", "device_id", "campaign_id", "ad_session_id", "quality"];
    private static readonly string[] IntegerFields = ["position_ms", "cost_micros"];

    /// <summary>Inserts the events of gzip JSON-lines files into a table shaped like <see cref="EventColumns"/>, as <see cref="Map"/> would.</summary>
    public static string InsertEventsFromJsonLines(string table, IEnumerable<string> files, int partition)
    {
        // One json_extract with every path parses each payload once (a call per field parsed it nine times: 3.7x slower).
        var paths = string.Join(", ", TextFields.Concat(IntegerFields).Select(f => $"'$.{f}'"));
        var texts = TextFields.Select((_, i) => $"CASE WHEN json_type(v[{i + 1}]) = 'VARCHAR' THEN v[{i + 1}]->>'$' END");
        var integers = IntegerFields.Select((_, i) => $"CASE WHEN json_type(v[{TextFields.Length + i + 1}]) IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(v[{TextFields.Length + i + 1}]->>'$' AS BIGINT) END");
        return $"INSERT INTO {table} SELECT event_id, event_type, {Utc("\"timestamp\"")}, version, source.service, source.device_type, source.region, " +
               $"{string.Join(", ", texts)}, {string.Join(", ", integers)}, payload::VARCHAR, coalesce(metadata::VARCHAR, '{{}}'), {partition.ToString(CultureInfo.InvariantCulture)} " +
               $"FROM (SELECT *, json_extract(payload, [{paths}]) AS v FROM read_json([{string.Join(", ", files.Select(f => $"'{f.Replace("'", "''", StringComparison.Ordinal)}'"))}], " +
               "format = 'newline_delimited', compression = 'gzip', " +
               "columns = {event_id: 'VARCHAR', event_type: 'VARCHAR', timestamp: 'VARCHAR', version: 'VARCHAR', " +
               "source: 'STRUCT(service VARCHAR, device_type VARCHAR, region VARCHAR)', payload: 'JSON', metadata: 'JSON'}))";
    }

    /// <summary>Derives the window results of an events table, as <see cref="MapWindow"/> would.</summary>
    public static string InsertWindowsFromEvents(string windows, string events) =>
        $"INSERT INTO {windows} SELECT event_id, \"timestamp\", payload->>'$.user_id', {Utc("payload->>'$.window_start'")}, {Utc("payload->>'$.window_end'")}, " +
        string.Join(", ", new[] { "plays", "pauses", "resumes", "seeks", "stops", "watch_time_ms", "distinct_videos" }.Select(f => $"coalesce({Integer(f)}, 0)")) + ", " +
        "CASE WHEN json_type(payload, '$.devices') = 'ARRAY' THEN json_extract(payload, '$.devices')::VARCHAR ELSE '[]' END, " +
        $"{Utc("payload->>'$.last_activity'")}, coalesce(CASE WHEN json_type(payload, '$.late_update') = 'BOOLEAN' THEN (payload->>'$.late_update')::BOOLEAN END, false), partition " +
        $"FROM {events} WHERE event_type = 'user.activity.window' AND json_type(payload, '$.user_id') = 'VARCHAR' " +
        $"AND {Utc("payload->>'$.window_start'")} IS NOT NULL AND {Utc("payload->>'$.window_end'")} IS NOT NULL";

    public static EventRow Map(KeystoneEvent e, int partition)
    {
        var p = e.Payload;
        return new EventRow(
            e.EventId.ToString("D"), e.EventType, e.Timestamp.UtcDateTime, e.Version,
            e.Source.Service, e.Source.DeviceType, e.Source.Region,
            p.GetString("user_id"), p.GetString("profile_id"), p.GetString("video_id"), p.GetString("device_id"),
            p.GetString("campaign_id"), p.GetDistinctString("ad_session_id"), p.GetString("quality"),
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
        // The archive's own writer options: the same escaping as the JSON lines DuckDB reads on the fast path.
        using (var w = new Utf8JsonWriter(buffer, EventJson.WriterOptions))
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
