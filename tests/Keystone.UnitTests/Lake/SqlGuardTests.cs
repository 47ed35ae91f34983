using Keystone.Lake;

namespace Keystone.UnitTests.Lake;

public class SqlGuardTests
{
    private static readonly SqlGuard Guard = new(maxLength: 2_000);

    [Theory]
    [InlineData("SELECT count(*) FROM events")]
    [InlineData("select event_type, count(*) from events group by 1 order by 2 desc limit 10;")]
    [InlineData("SELECT region, device_type, video_id, count(*) AS plays FROM events WHERE event_type = 'video.play.started' GROUP BY ALL ORDER BY plays DESC LIMIT 10")]
    [InlineData("WITH p AS (SELECT * FROM events WHERE event_type LIKE 'video.%') SELECT count(*) FROM p")]
    [InlineData("WITH p(a) AS MATERIALIZED (SELECT 1) SELECT * FROM p, events e JOIN activity_windows w ON w.user_id = e.user_id")]
    [InlineData("SELECT extract(hour FROM \"timestamp\") AS h, trim(both ' ' FROM region) FROM events")]
    [InlineData("SELECT * FROM (SELECT user_id FROM events) t, (SELECT 1) u")]
    [InlineData("SELECT user_id FROM events WHERE user_id IN (SELECT user_id FROM activity_windows)")]
    [InlineData("SELECT json_extract_string(payload, '$.title') FROM events")]
    [InlineData("SELECT 'COPY; ATTACH' AS text, \"set\" FROM events -- DROP TABLE x; \n")]
    [InlineData("SELECT * FROM range(10) r, events")]
    [InlineData("FROM events SELECT count(*)")]
    [InlineData("SELECT ARRAY(SELECT video_id FROM events LIMIT 3)")]
    public void Read_only_selects_over_the_lake_views_pass(string sql)
    {
        var verdict = Guard.Check(sql);
        Assert.True(verdict.Allowed, verdict.Reason);
        Assert.False(verdict.Statement.TrimEnd().EndsWith(';'));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   -- nothing\n", "empty")]
    [InlineData("COPY events TO 'out.csv'", "only a SELECT")]
    [InlineData("SELECT 1; COPY (SELECT 1) TO 'out.bin'", "only one statement")]
    [InlineData("SELECT 1; SELECT 2", "only one statement")]
    [InlineData("ATTACH 'evil.db' AS evil", "only a SELECT")]
    [InlineData("SELECT 1 FROM events; ATTACH 'x.db'", "only one statement")]
    [InlineData("INSTALL httpfs", "only a SELECT")]
    [InlineData("LOAD httpfs", "only a SELECT")]
    [InlineData("PRAGMA database_list", "only a SELECT")]
    [InlineData("SET enable_external_access = true", "only a SELECT")]
    [InlineData("WITH x AS (SELECT 1) INSERT INTO events SELECT * FROM x", "'INSERT' is not allowed")]
    [InlineData("SELECT * FROM events WHERE 1 = 1 UNION ALL SELECT * FROM events; DROP VIEW events", "only one statement")]
    [InlineData("SELECT * FROM read_csv('/etc/passwd')", "table function 'read_csv'")]
    [InlineData("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto")]
    [InlineData("SELECT (SELECT content FROM read_text('/etc/passwd'))", "read_text")]
    [InlineData("SELECT * FROM events, read_parquet('/var/lib/x.parquet')", "read_parquet")]
    [InlineData("SELECT * FROM '/etc/passwd'", "reading files is not allowed")]
    [InlineData("SELECT * FROM events JOIN '/etc/passwd' p ON true", "reading files is not allowed")]
    [InlineData("SELECT * FROM \"/etc/passwd\"", "unknown table '/etc/passwd'")]
    [InlineData("SELECT * FROM parquet_scan('/x.parquet')", "parquet_scan")]
    [InlineData("SELECT * FROM glob('/etc/*')", "glob")]
    [InlineData("SELECT * FROM duckdb_settings()", "duckdb_settings")]
    [InlineData("SELECT current_setting('allowed_directories')", "current_setting")]
    [InlineData("SELECT getenv('HOME')", "getenv")]
    [InlineData("SELECT * FROM query('SELECT 1')", "query")]
    [InlineData("SELECT json_execute_serialized_sql('{}')", "json_execute_serialized_sql")]
    [InlineData("SELECT \"read_csv\"('/etc/passwd')", "read_csv")]
    [InlineData("SELECT * FROM main.events", "qualified names")]
    [InlineData("SELECT * FROM information_schema.tables", "qualified names")]
    [InlineData("SELECT * FROM sqlite_master", "unknown table 'sqlite_master'")]
    [InlineData("SELECT * FROM passwords", "unknown table 'passwords'")]
    [InlineData("SELECT $$abc$$", "'$'")]
    [InlineData("SELECT 'unterminated FROM events", "unterminated string")]
    [InlineData("SELECT 1 /* open comment", "unterminated /*")]
    [InlineData("SELECT (1", "unbalanced '('")]
    [InlineData("SELECT 1)", "unbalanced ')'")]
    [InlineData("SELECT * FROM", "a table is missing")]
    [InlineData("DESCRIBE events", "only a SELECT")]
    [InlineData("EXPORT DATABASE 'exported'", "only a SELECT")]
    [InlineData("CALL pragma_version()", "only a SELECT")]
    [InlineData("SELECT * FROM events e, LATERAL read_json('/etc/x')", "read_json")]
    [InlineData("SELECT * FROM ARRAY(SELECT 1 FROM '/etc/passwd')", "table function 'ARRAY'")]
    [InlineData("SELECT ARRAY(SELECT 1 FROM '/etc/passwd')", "reading files is not allowed")]
    public void Hostile_or_broken_sql_is_refused_with_the_reason(string sql, string reason)
    {
        var verdict = Guard.Check(sql);
        Assert.False(verdict.Allowed, $"allowed: {sql}");
        Assert.StartsWith("sql: ", verdict.Reason);
        Assert.Contains(reason, verdict.Reason, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Text_over_the_length_limit_is_refused()
    {
        var verdict = Guard.Check("SELECT " + new string('1', 2_100));
        Assert.False(verdict.Allowed);
        Assert.Contains("longer than 2000 characters", verdict.Reason);
    }

    [Fact]
    public void A_keyword_used_as_a_name_is_refused_with_a_hint_to_quote_it()
    {
        var verdict = Guard.Check("SELECT event_type AS load FROM events");
        Assert.False(verdict.Allowed);
        Assert.Contains("\"load\"", verdict.Reason);
        Assert.True(Guard.Check("SELECT event_type AS \"load\" FROM events").Allowed);
    }
}
