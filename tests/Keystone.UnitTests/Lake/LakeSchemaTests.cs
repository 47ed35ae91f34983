using Keystone.Aggregation;
using Keystone.Client.Simulation;
using Keystone.Events;
using Keystone.Lake;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Lake;

public class LakeSchemaTests
{
    private static IEnumerable<KeystoneEvent> OneOfEachType()
    {
        var simulator = new TrafficSimulator(new SimulationOptions { Seed = 5 });
        var events = simulator.Catalogue(Sample.Now).Take(1).Concat(Enumerable.Range(0, 30_000).Select(_ => simulator.Next(Sample.Now))).ToList();
        // The two identity events the simulator does not produce.
        var source = new EventSource("identity-service", "mobile", "eu-west-1");
        events.Add(KeystoneEvent.Create("profile.created", Payload.Create(("user_id", "u-9"), ("profile_id", "p-9"), ("profile_name", "Kids"), ("maturity_level", "kids"), ("language", "fr")), source, timestamp: Sample.Now));
        events.Add(KeystoneEvent.Create("user.profile_switch", Payload.Create(("user_id", "u-9"), ("from_profile_id", "p-8"), ("profile_id", "p-9"), ("device_id", "d-1")), source, timestamp: Sample.Now,
            metadata: EventMetadata.Of(("trace_id", "t-1"), ("correlation_id", "c \"quoted\""))));
        return events.GroupBy(e => e.EventType).Select(g => g.First());
    }

    [Fact]
    public void Every_event_type_maps_its_envelope_and_common_payload_fields_to_typed_columns_and_round_trips()
    {
        var seen = new HashSet<string>();
        foreach (var e in OneOfEachType())
        {
            seen.Add(e.EventType);
            var row = LakeSchema.Map(e, partition: 3);
            var p = e.Payload;
            Assert.Equal(e.EventId.ToString("D"), row.EventId);
            Assert.Equal(e.EventType, row.EventType);
            Assert.Equal(e.Timestamp.UtcDateTime, row.Timestamp);
            Assert.Equal(DateTimeKind.Utc, row.Timestamp.Kind);
            Assert.Equal((e.Version, e.Source.Service, e.Source.DeviceType, e.Source.Region), (row.Version, row.Service, row.DeviceType, row.Region));
            Assert.Equal(
                (p.GetString("user_id"), p.GetString("profile_id"), p.GetString("video_id"), p.GetString("device_id"), p.GetString("campaign_id"), p.GetString("ad_session_id"), p.GetString("quality")),
                (row.UserId, row.ProfileId, row.VideoId, row.DeviceId, row.CampaignId, row.AdSessionId, row.Quality));
            Assert.Equal((p.GetInt64("position_ms"), p.GetInt64("cost_micros")), (row.PositionMs, row.CostMicros));
            Assert.Equal(3, row.Partition);
            // The JSON columns keep everything: the event comes back whole (timestamps are microseconds in the lake).
            var back = LakeSchema.ToEvent(row.EventId, row.EventType, row.Timestamp, row.Version, row.Service, row.DeviceType, row.Region, row.Payload, row.Metadata);
            var truncated = e with { Timestamp = new DateTimeOffset(e.Timestamp.UtcTicks - e.Timestamp.UtcTicks % 10, TimeSpan.Zero) };
            Assert.Equal(EventJson.Serialize(truncated), EventJson.Serialize(back));
        }
        // The simulator's vocabulary covers every built-in type but the aggregations' own outputs (tested below).
        var expected = SchemaRegistry.Embedded.EventTypes.Where(t => t is not (ActivityEvents.WindowType or ActivityEvents.TriggerType)).ToHashSet();
        Assert.Empty(expected.Except(seen).Order());
    }

    [Fact]
    public void DuckDB_reading_the_json_lines_itself_maps_every_type_exactly_as_the_event_by_event_path()
    {
        var window = new UserWindowStats(new TimeWindow(Sample.Now.AddMinutes(-5), Sample.Now), 3, 1, 1, 0, 1, 120_000, 2, ["tv-1", "phone-2"], null, Closed: true);
        var events = OneOfEachType()
            .Append(ActivityEvents.Window(new WindowResult("u-1", window, LateUpdate: true), partition: 4, Sample.Now.AddTicks(1_234_567)))
            // Odd shapes: a number where a string is expected, a string where an integer is, a 7-digit fraction, an offset.
            .Append(KeystoneEvent.Create("video.play.started", Payload.Create(("user_id", 42), ("video_id", "v"), ("position_ms", "12"), ("quality", null)),
                new EventSource("svc"), timestamp: new DateTimeOffset(2026, 11, 27, 4, 5, 6, TimeSpan.FromHours(2)).AddTicks(9_876_543)))
            .ToList();
        var work = Directory.CreateTempSubdirectory("keystone-lake-unit-");
        try
        {
            var file = Path.Combine(work.FullName, "p4.jsonl.gz");
            using (var gzip = new System.IO.Compression.GZipStream(File.Create(file), System.IO.Compression.CompressionLevel.Fastest))
                foreach (var e in events) gzip.Write(System.Text.Encoding.UTF8.GetBytes(EventJson.Serialize(e) + "\n"));
            using var db = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
            db.Open();
            LakeCompactor.Execute(db, LakeSchema.CreateTable("e", LakeSchema.EventColumns));
            LakeCompactor.Execute(db, LakeSchema.CreateTable("w", LakeSchema.WindowColumns));
            LakeCompactor.Execute(db, LakeSchema.InsertEventsFromJsonLines("e", [file], 4));
            LakeCompactor.Execute(db, LakeSchema.InsertWindowsFromEvents("w", "e"));

            var rows = Rows(db, "SELECT * FROM e").ToDictionary(r => (string)r[0]!);
            Assert.Equal(events.Count, rows.Count);
            foreach (var e in events)
            {
                var expected = LakeSchema.Map(e, 4);
                var r = rows[e.EventId.ToString("D")];
                var actual = new EventRow((string)r[0]!, (string)r[1]!, (DateTime)r[2]!, (string)r[3]!, (string)r[4]!, (string?)r[5], (string?)r[6],
                    (string?)r[7], (string?)r[8], (string?)r[9], (string?)r[10], (string?)r[11], (string?)r[12], (string?)r[13], (long?)r[14], (long?)r[15],
                    (string)r[16]!, (string)r[17]!, (int)r[18]!);
                // DuckDB keeps microseconds.
                Assert.Equal(expected with { Timestamp = new DateTime(expected.Timestamp.Ticks - expected.Timestamp.Ticks % 10) }, actual with { Timestamp = DateTime.SpecifyKind(actual.Timestamp, DateTimeKind.Utc) });
            }
            var w = Assert.Single(Rows(db, "SELECT * FROM w"));
            var expectedWindow = LakeSchema.MapWindow(events[^2], 4)!;
            Assert.Equal((expectedWindow.EventId, expectedWindow.UserId, expectedWindow.WindowStart, expectedWindow.WindowEnd, expectedWindow.Plays, expectedWindow.WatchTimeMs, expectedWindow.DistinctVideos, expectedWindow.Devices, expectedWindow.LastActivity, expectedWindow.LateUpdate),
                ((string)w[0]!, (string)w[2]!, (DateTime)w[3]!, (DateTime)w[4]!, (long)w[5]!, (long)w[10]!, (long)w[11]!, (string)w[12]!, (DateTime?)w[13], (bool)w[14]!));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static List<object?[]> Rows(DuckDB.NET.Data.DuckDBConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        using var reader = cmd.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read()) rows.Add([.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? null : reader.GetValue(i))]);
        return rows;
    }

    [Fact]
    public void Typed_columns_are_filled_where_the_type_has_the_field()
    {
        var byType = OneOfEachType().ToDictionary(e => e.EventType, e => LakeSchema.Map(e, 0));
        Assert.NotNull(byType["video.play.started"].VideoId);
        Assert.NotNull(byType["video.play.started"].Quality);
        Assert.NotNull(byType["video.play.started"].PositionMs);
        Assert.NotNull(byType["ad.impression"].CampaignId);
        Assert.NotNull(byType["ad.impression"].CostMicros);
        Assert.NotNull(byType["ad.click"].AdSessionId);
        Assert.Null(byType["system.health_check"].UserId);
        Assert.Null(byType["billing.payment_processed"].VideoId);
    }

    [Fact]
    public void A_window_result_maps_to_the_activity_windows_table_and_other_events_do_not()
    {
        var window = new UserWindowStats(new TimeWindow(Sample.Now.AddMinutes(-5), Sample.Now), 3, 1, 1, 0, 1, 120_000, 2, ["tv-1", "phone-2"], Sample.Now.AddMinutes(-1), Closed: true);
        var e = ActivityEvents.Window(new WindowResult("u-1", window, LateUpdate: false), partition: 2, Sample.Now);
        var row = LakeSchema.MapWindow(e, 2);
        Assert.NotNull(row);
        Assert.Equal(("u-1", Sample.Now.AddMinutes(-5).UtcDateTime, Sample.Now.UtcDateTime), (row.UserId, row.WindowStart, row.WindowEnd));
        Assert.Equal((3L, 1L, 1L, 0L, 1L, 120_000L, 2L), (row.Plays, row.Pauses, row.Resumes, row.Seeks, row.Stops, row.WatchTimeMs, row.DistinctVideos));
        Assert.Equal("[\"tv-1\",\"phone-2\"]", row.Devices);
        Assert.False(row.LateUpdate);
        Assert.Null(LakeSchema.MapWindow(OneOfEachType().First(x => x.EventType == "video.play.started"), 0));
    }
}
