using System.Text;
using System.Text.Json;
using Keystone.Events;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Events;

public class EventJsonTests
{
    private const string Id = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f";

    // A valid envelope with one part swapped in, so each test shows only what it breaks.
    private static string Envelope(
        string id = $"\"{Id}\"",
        string type = "\"video.play.started\"",
        string timestamp = "\"2024-12-26T12:00:00Z\"",
        string version = "\"1.0\"",
        string source = """{ "service": "playback-service", "region": "us-east-1" }""",
        string payload = """{ "user_id": "user-123", "video_id": "v1", "profile_id": "p1", "quality": "4K", "position_ms": 0 }""",
        string metadata = """{ "trace_id": "trace-789" }""",
        string extra = "") =>
        $$"""{ "event_id": {{id}}, "event_type": {{type}}, "timestamp": {{timestamp}}, "version": {{version}}, "source": {{source}}, "payload": {{payload}}, "metadata": {{metadata}}{{extra}} }""";

    private static ParsedEvent Read(string json)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json), EventJson.ReaderOptions);
        Assert.True(reader.Read());
        return EventJson.ReadEvent(ref reader);
    }

    private static ValidationError ErrorOf(string json)
    {
        var parsed = Read(json);
        Assert.Null(parsed.Event);
        return parsed.Error!;
    }

    [Fact]
    public void The_seed_envelope_parses()
    {
        var e = EventJson.Parse(Sample.SeedEnvelope);

        Assert.Equal(Sample.SeedEventId, e.EventId);
        Assert.Equal("video.play.started", e.EventType);
        Assert.Equal(Sample.Now, e.Timestamp);
        Assert.Equal(TimeSpan.Zero, e.Timestamp.Offset);
        Assert.Equal("1.0", e.Version);
        Assert.Equal(new EventSource("playback-service", "smart_tv", "us-east-1"), e.Source);
        Assert.Equal("""{"user_id":"user-123","video_id":"stranger-things-s4e01","profile_id":"profile-456","quality":"4K","position_ms":0}""", e.Payload.ToString());
        Assert.Equal(EventMetadata.Of(("trace_id", "trace-789"), ("correlation_id", "corr-101")), e.Metadata);
        Assert.Equal("user-123", e.PartitionKey);
        Assert.Null(SchemaRegistry.Embedded.Validate(e, now: Sample.Now));
    }

    [Fact]
    public void The_brief_envelope_with_its_placeholder_id_is_refused_but_keeps_the_raw_id()
    {
        var parsed = Read(Sample.SeedEnvelope.Replace(Id, "uuid-v4"));

        Assert.Null(parsed.Event);
        Assert.Equal("uuid-v4", parsed.RawEventId);
        Assert.Equal(new ValidationError("event_id", "'uuid-v4' is not a UUID (expected the 8-4-4-4-12 hex form)"), parsed.Error);
    }

    [Fact]
    public void Round_trip_serialize_then_parse_is_equal()
    {
        var original = Sample.PlayStarted() with { Timestamp = new DateTimeOffset(2024, 12, 26, 7, 30, 15, 123, TimeSpan.FromHours(-5)) };
        var json = EventJson.Serialize(original);
        var back = EventJson.Parse(json);

        Assert.Equal(original, back);
        Assert.Equal(TimeSpan.FromHours(-5), back.Timestamp.Offset);
        Assert.Equal(json, EventJson.Serialize(back));
        Assert.Contains("\"timestamp\":\"2024-12-26T07:30:15.123-05:00\"", json);
    }

    [Fact]
    public void Round_trip_keeps_equality_for_text_the_default_encoder_would_escape()
    {
        // '+', '<', '&' and non-ASCII letters are escaped by System.Text.Json's default encoder but not by the envelope's.
        var original = Sample.Of("content.added", Payload.Create(
            ("video_id", "v+1"), ("title", "Café <Crème> & \"Co\" – 東京"), ("genres", new[] { "drama+", "comédie" }), ("aired", Sample.Now)));

        var back = EventJson.Parse(EventJson.Serialize(original));

        Assert.Equal(original.Payload, back.Payload);
        Assert.Equal(original, back);
        Assert.Equal("Café <Crème> & \"Co\" – 東京", back.Payload.GetString("title"));
        Assert.Equal("2024-12-26T12:00:00.0000000+00:00", back.Payload.GetString("aired"));
    }

    [Fact]
    public void Source_without_optional_fields_and_metadata_null_parse()
    {
        var e = EventJson.Parse(Envelope(source: """{ "service": "svc", "device_type": null }""", metadata: "null"));
        Assert.Equal(new EventSource("svc"), e.Source);
        Assert.Same(EventMetadata.Empty, e.Metadata);
    }

    [Fact]
    public void Offset_timestamps_are_accepted()
    {
        Assert.Equal(new DateTimeOffset(2024, 12, 26, 12, 0, 0, TimeSpan.FromHours(7)), EventJson.Parse(Envelope(timestamp: "\"2024-12-26T12:00:00+07:00\"")).Timestamp);
        Assert.Equal(new DateTimeOffset(2024, 12, 26, 12, 0, 0, 250, TimeSpan.Zero), EventJson.Parse(Envelope(timestamp: "\"2024-12-26T12:00:00.25Z\"")).Timestamp);
    }

    [Theory]
    [InlineData("2024-12-26T12:00:00")]
    [InlineData("2024-12-26T12:00:00.123")]
    [InlineData("2024-12-26 12:00:00Z")]
    [InlineData("26/12/2024 12:00:00Z")]
    [InlineData("yesterday")]
    public void Timestamp_without_offset_or_in_another_shape_is_refused(string timestamp)
    {
        var error = ErrorOf(Envelope(timestamp: $"\"{timestamp}\""));
        Assert.Equal(new ValidationError("timestamp", $"'{timestamp}' is not an ISO-8601 date-time with an offset (e.g. 2024-12-26T12:00:00Z)"), error);
    }

    [Fact]
    public void Event_id_that_is_not_a_uuid_keeps_the_raw_id()
    {
        var parsed = Read(Envelope(id: "\"evt-42\""));
        Assert.Equal("evt-42", parsed.RawEventId);
        Assert.Equal(new ValidationError("event_id", "'evt-42' is not a UUID (expected the 8-4-4-4-12 hex form)"), parsed.Error);
    }

    [Fact]
    public void The_raw_id_is_kept_when_a_later_field_is_wrong()
    {
        var parsed = Read(Envelope(version: "1"));
        Assert.Equal(Id, parsed.RawEventId);
        Assert.Equal(new ValidationError("version", "expected string, got number"), parsed.Error);
    }

    [Fact]
    public void The_nil_uuid_is_refused_while_parsing()
    {
        Assert.Equal("event_id", ErrorOf(Envelope(id: "\"00000000-0000-0000-0000-000000000000\"")).Field);
    }

    [Theory]
    [InlineData("source", "\"playback-service\"", "source", "expected an object, got string")]
    [InlineData("payload", "[1, 2]", "payload", "expected an object, got array")]
    [InlineData("metadata", """{ "trace_id": 789 }""", "metadata.trace_id", "expected string, got number")]
    [InlineData("metadata", "[]", "metadata", "expected an object of strings, got array")]
    [InlineData("source", """{ "service": "svc", "region": 1 }""", "source.region", "expected string, got number")]
    [InlineData("source", """{ "service": "svc", "planet": "earth" }""", "source.planet", "is not a field of source (fields: service, device_type, region)")]
    [InlineData("source", """{ "region": "us-east-1" }""", "source.service", "required field is missing")]
    [InlineData("type", "\"\"", "event_type", "must not be empty")]
    [InlineData("timestamp", "1735214400", "timestamp", "expected an ISO-8601 string, got number")]
    [InlineData("id", "null", "event_id", "expected a UUID string, got null")]
    public void Wrong_envelope_types_name_the_field(string part, string json, string field, string reason)
    {
        var envelope = part switch
        {
            "source" => Envelope(source: json),
            "payload" => Envelope(payload: json),
            "metadata" => Envelope(metadata: json),
            "type" => Envelope(type: json),
            "timestamp" => Envelope(timestamp: json),
            _ => Envelope(id: json),
        };
        Assert.Equal(new ValidationError(field, reason), ErrorOf(envelope));
    }

    [Fact]
    public void Unknown_top_level_field()
    {
        var error = ErrorOf(Envelope(extra: """, "priority": "high" """));
        Assert.Equal(new ValidationError("priority", "is not an envelope field (fields: event_id, event_type, timestamp, version, source, payload, metadata)"), error);
    }

    [Fact]
    public void Duplicate_envelope_field()
    {
        var error = ErrorOf(Envelope(extra: """, "event_type": "video.play.paused" """));
        Assert.Equal(new ValidationError("event_type", "appears more than once"), error);
    }

    [Fact]
    public void Missing_required_envelope_field()
    {
        var json = """{ "event_id": "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f", "event_type": "a.b", "timestamp": "2024-12-26T12:00:00Z", "source": { "service": "s" }, "payload": {} }""";
        Assert.Equal(new ValidationError("version", "required field is missing"), ErrorOf(json));
    }

    [Fact]
    public void Nested_object_in_payload_is_refused()
    {
        var error = ErrorOf(Envelope(payload: """{ "user_id": "u", "device": { "kind": "tv" } }"""));
        Assert.Equal(new ValidationError("payload", "nested objects are not allowed; payload values are strings, numbers, booleans, null or arrays of those"), error);
    }

    [Fact]
    public void Nested_array_in_payload_is_refused()
    {
        var error = ErrorOf(Envelope(payload: """{ "matrix": [[1, 2], [3]] }"""));
        Assert.Equal(new ValidationError("payload", "arrays may hold only strings, numbers, booleans and nulls"), error);
    }

    [Fact]
    public void The_first_problem_wins_and_the_reader_ends_on_the_events_end()
    {
        var json = $"[{Envelope(type: "1", version: "2")}, 42]";
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
        reader.Read();
        reader.Read();
        var parsed = EventJson.ReadEvent(ref reader);

        Assert.Equal("event_type", parsed.Error!.Field);
        Assert.Equal(JsonTokenType.EndObject, reader.TokenType);
        Assert.True(reader.Read());
        Assert.Equal(42, reader.GetInt32());
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"event\"")]
    public void Parse_refuses_non_objects(string json) =>
        Assert.Equal("An event must be a JSON object.", Assert.Throws<FormatException>(() => EventJson.Parse(json)).Message);

    [Fact]
    public void Parse_of_nothing_is_malformed_json() =>
        Assert.StartsWith("Malformed JSON: ", Assert.Throws<FormatException>(() => EventJson.Parse("")).Message);

    [Fact]
    public void Parse_reports_malformed_json_as_format_exception()
    {
        var e = Assert.Throws<FormatException>(() => EventJson.Parse("""{ "event_id": """));
        Assert.StartsWith("Malformed JSON: ", e.Message);
    }

    [Fact]
    public void Parse_reports_the_field_and_reason()
    {
        var e = Assert.Throws<FormatException>(() => EventJson.Parse(Envelope(id: "\"nope\"")));
        Assert.Equal("event_id: 'nope' is not a UUID (expected the 8-4-4-4-12 hex form)", e.Message);
    }

    [Fact]
    public void System_text_json_uses_the_wire_form()
    {
        var e = Sample.PlayStarted();
        var json = JsonSerializer.Serialize(e);
        Assert.Equal(EventJson.Serialize(e), json);
        Assert.Equal(e, JsonSerializer.Deserialize<KeystoneEvent>(json));
        Assert.Equal("event_id: 'x' is not a UUID (expected the 8-4-4-4-12 hex form)",
            Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<KeystoneEvent>(Envelope(id: "\"x\""))).Message);
    }

    [Fact]
    public void Ndjson_writes_one_compact_event_per_line()
    {
        var events = new[] { Sample.PlayStarted(), Sample.Payment() };
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        EventJson.WriteNdjson(buffer, events);

        var lines = Encoding.UTF8.GetString(buffer.WrittenSpan).Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Equal("", lines[2]);
        Assert.Equal(events, lines[..2].Select(EventJson.Parse));
        Assert.Equal(EventJson.Serialize(events[0]), lines[0]);
    }

    [Theory]
    [InlineData("2024-12-26T12:00:00Z", true)]
    [InlineData("2024-12-26T12:00:00.1234567+05:30", true)]
    [InlineData("2024-12-26T12:00Z", true)]
    [InlineData("2024-12-26T12:00:00z", true)]
    [InlineData("2024-12-26T12:00:00+0530", false)]
    [InlineData("2024-12-26", false)]
    [InlineData("2024-13-26T12:00:00Z", false)]
    public void TryParseTimestamp_needs_an_explicit_offset(string text, bool ok) =>
        Assert.Equal(ok, EventJson.TryParseTimestamp(text, out _));

    [Fact]
    public void FormatTimestamp_uses_z_for_utc_and_the_offset_otherwise()
    {
        Assert.Equal("2024-12-26T12:00:00Z", EventJson.FormatTimestamp(Sample.Now));
        Assert.Equal("2024-12-26T12:00:00.5+01:00", EventJson.FormatTimestamp(new DateTimeOffset(2024, 12, 26, 12, 0, 0, 500, TimeSpan.FromHours(1))));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1234567, 0)]
    [InlineData(5000000, 90)]
    [InlineData(1, -330)]
    public void An_event_is_written_with_its_timestamp_as_FormatTimestamp_gives_it(long ticks, int offsetMinutes)
    {
        var at = new DateTimeOffset(new DateTime(2024, 12, 26, 12, 0, 0).AddTicks(ticks), TimeSpan.FromMinutes(offsetMinutes));
        var e = Sample.PlayStarted() with { Timestamp = at };
        using var json = System.Text.Json.JsonDocument.Parse(EventJson.Serialize(e));
        Assert.Equal(EventJson.FormatTimestamp(at), json.RootElement.GetProperty("timestamp").GetString());
    }

    public static TheoryData<string, string, string?, string?, string> SizeBoundCases() => new()
    {
        { "video.play.started", "playback-service", null, null, "trace-789" },
        { "t", "s", "tv", "us-east-1", "" },
        // Characters the writer escapes as \uXXXX, a quote and a backslash, non-ASCII letters and a surrogate pair.
        { "ad.click\u0001\n", "svc\"\\", "d\u0007\u001f", "r\u00e9gion", "\ud83d\ude00 caf\u00e9 \u0000" },
        { new string('\u0001', 500), new string('\u00e9', 300), new string('"', 64), string.Concat(Enumerable.Repeat("\ud83d\ude00", 10)), new string('x', 2000) },
    };

    [Theory]
    [MemberData(nameof(SizeBoundCases))]
    public void The_size_bound_is_never_below_the_size(string type, string service, string? device, string? region, string value)
    {
        var e = new KeystoneEvent(Guid.Parse(Id), type, DateTimeOffset.Parse("2024-12-26T12:00:00.1234567+13:45"), "1.0\u0002",
            new EventSource(service, device, region), Payload.Create(("user_id", value)),
            EventMetadata.Of(("trace_id", value), ("k\u0003", "v"), ("", "")));
        Assert.InRange(EventJson.SizeOf(e), 1, EventJson.SizeBound(e));
    }
}
