using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ingest;

public class EventBatchParserTests
{
    private static ParsedBatch Parse(string body, BodyFormat format = BodyFormat.Auto, ValidationLimits? limits = null) =>
        EventBatchParser.Parse(Encoding.UTF8.GetBytes(body), format, SchemaRegistry.Embedded, limits, Sample.Now);

    private static readonly KeystoneEvent A = Sample.PlayStarted(userId: "user-a");
    private static readonly KeystoneEvent B = Sample.Payment(userId: "user-b");
    private static readonly KeystoneEvent C = Sample.HealthCheck();

    private static string Json(KeystoneEvent e) => EventJson.Serialize(e);

    // Valid JSON and a valid envelope, but a payload the schema refuses.
    private static string BadQuality(Guid id) => Json(Sample.PlayStarted(quality: "8K", id: id));

    [Fact]
    public void Json_array_with_good_and_bad_events_reports_positions()
    {
        var badId = Guid.NewGuid();
        var body = $"[{Json(A)}, {BadQuality(badId)}, 17, {Json(B)}, {Envelope.NoVersion}, {Json(C)}]";

        var batch = Parse(body);

        Assert.Null(batch.BodyError);
        Assert.Equal(6, batch.Total);
        Assert.Equal([A, B, C], batch.Events);
        Assert.Equal([0, 3, 5], batch.Indexes);
        Assert.Equal(
            [
                new EventRejection(1, badId.ToString(), "payload.quality", "payload.quality: '8K' is not one of 4K, HD, SD"),
                new EventRejection(2, null, "event", "expected a JSON object, got Number"),
                new EventRejection(4, Envelope.Id, "version", "version: required field is missing"),
            ],
            batch.Rejections);
    }

    [Fact]
    public void Ndjson_with_a_broken_line_rejects_only_that_line()
    {
        var body = $"{Json(A)}\n{{\"event_id\": \"broken\n\n{Json(B)}\r\n{Json(C)}\n";

        var batch = Parse(body, BodyFormat.Ndjson);

        Assert.Null(batch.BodyError);
        Assert.Equal(4, batch.Total);
        Assert.Equal([A, B, C], batch.Events);
        Assert.Equal([0, 2, 3], batch.Indexes);
        var rejection = Assert.Single(batch.Rejections);
        Assert.Equal(1, rejection.Index);
        Assert.Null(rejection.EventId);
        Assert.Equal("event", rejection.Field);
        Assert.StartsWith("line 2: malformed JSON: ", rejection.Error);
    }

    [Fact]
    public void Ndjson_rejections_carry_the_line_number_and_raw_id()
    {
        var badId = Guid.NewGuid();
        var body = $"{Json(A)}\n\n[1]\n{BadQuality(badId)}\n{Json(B)} {{}}\n";

        var batch = Parse(body, BodyFormat.Ndjson);

        Assert.Equal([A], batch.Events);
        Assert.Equal(
            [
                new EventRejection(1, null, "event", "line 3: expected a JSON object, got StartArray"),
                new EventRejection(2, badId.ToString(), "payload.quality", "payload.quality: '8K' is not one of 4K, HD, SD"),
            ],
            batch.Rejections.Take(2));
        Assert.Equal(3, batch.Rejections[2].Index);
        Assert.StartsWith("line 5: malformed JSON: ", batch.Rejections[2].Error);
    }

    [Fact]
    public void Malformed_json_array_accepts_nothing()
    {
        var batch = Parse($"[{Json(A)}, {Json(B)}, {{\"event_id\": ]");

        Assert.NotNull(batch.BodyError);
        Assert.StartsWith("malformed JSON: ", batch.BodyError);
        Assert.Contains("(line 1, byte ", batch.BodyError);
        Assert.Empty(batch.Events);
        Assert.Empty(batch.Indexes);
        Assert.Empty(batch.Rejections);
    }

    [Fact]
    public void Content_after_the_array_makes_the_body_unusable()
    {
        var batch = Parse($"[{Json(A)}] [{Json(B)}]", BodyFormat.JsonArray);
        Assert.NotNull(batch.BodyError);
        Assert.Empty(batch.Events);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \r\n\t ")]
    [InlineData("\uFEFF ")]
    public void Empty_body_is_a_body_error(string body)
    {
        var batch = Parse(body);
        Assert.Equal("the body is empty; send a JSON array of events, a single event object, or NDJSON (one event per line)", batch.BodyError);
        Assert.Equal(0, batch.Total);
    }

    [Fact]
    public void A_string_body_is_not_events()
    {
        Assert.Equal("expected a JSON array of events or an event object, got String", Parse("\"hello\"").BodyError);
    }

    [Fact]
    public void A_single_object_is_a_batch_of_one()
    {
        var batch = Parse(Sample.SeedEnvelope);

        Assert.Null(batch.BodyError);
        Assert.Equal(1, batch.Total);
        Assert.Equal(Sample.SeedEventId, Assert.Single(batch.Events).EventId);
        Assert.Equal([0], batch.Indexes);
    }

    [Fact]
    public void A_single_bad_object_is_a_rejection_at_index_zero()
    {
        var batch = Parse(Sample.SeedEnvelope.Replace("\"4K\"", "\"8K\""));
        Assert.Empty(batch.Events);
        Assert.Equal(new EventRejection(0, Sample.SeedEventId.ToString(), "payload.quality", "payload.quality: '8K' is not one of 4K, HD, SD"), Assert.Single(batch.Rejections));
    }

    [Fact]
    public void Auto_detects_ndjson_from_two_object_lines()
    {
        var batch = Parse($"{Json(A)}  \r\n{Json(B)}");
        Assert.Null(batch.BodyError);
        Assert.Equal([A, B], batch.Events);
        Assert.Equal(2, batch.Total);
    }

    [Fact]
    public void Auto_reads_a_pretty_printed_object_as_one_event()
    {
        var batch = Parse("\n\n" + Sample.SeedEnvelope + "\n");
        Assert.Null(batch.BodyError);
        Assert.Single(batch.Events);
    }

    [Fact]
    public void Auto_reads_a_multi_line_array_as_an_array()
    {
        var batch = Parse($"[\n{Json(A)},\n{Json(B)}\n]\n");
        Assert.Equal([A, B], batch.Events);
        Assert.Equal([0, 1], batch.Indexes);
    }

    [Fact]
    public void Byte_order_mark_is_skipped()
    {
        var body = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes($"[{Json(A)}]")).ToArray();
        var batch = EventBatchParser.Parse(body, BodyFormat.Auto, SchemaRegistry.Embedded, null, Sample.Now);
        Assert.Equal([A], batch.Events);
    }

    [Fact]
    public void The_size_limit_applies_to_the_event_as_sent()
    {
        // Whitespace inside the event counts: the limit is on what the producer sent, not on the compacted form.
        var padded = Json(A).Replace(",", ",      ");
        var compact = Encoding.UTF8.GetByteCount(Json(A));
        var limits = new ValidationLimits { MaxEventBytes = compact + 10 };

        Assert.Equal([A], Parse($"[{Json(A)}]", limits: limits).Events);
        var rejected = Assert.Single(Parse($"[{padded}]", limits: limits).Rejections);
        Assert.Equal("event", rejected.Field);
        Assert.Equal($"event: is {Encoding.UTF8.GetByteCount(padded)} bytes as JSON; the limit is {compact + 10} bytes", rejected.Error);
    }

    [Fact]
    public void Future_events_are_judged_against_the_given_clock()
    {
        var future = A with { Timestamp = Sample.Now.AddHours(2) };
        var rejection = Assert.Single(Parse($"[{Json(future)}]").Rejections);
        Assert.Equal("timestamp", rejection.Field);
    }

    private static class Envelope
    {
        public const string Id = "11111111-2222-4333-8444-555555555555";
        public const string NoVersion = $$"""{ "event_id": "{{Id}}", "event_type": "video.play.started", "timestamp": "2024-12-26T12:00:00Z", "source": { "service": "s" }, "payload": {} }""";
    }
}
