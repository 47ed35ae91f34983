using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ingest;

public class EventBatchCodecTests
{
    private static KeystoneEvent[] Mixed() =>
    [
        Sample.PlayStarted(userId: "a"),
        Sample.Payment(region: null),
        Sample.PlayStarted(userId: "b", metadata: EventMetadata.Empty) with { Timestamp = new DateTimeOffset(2025, 3, 1, 8, 30, 15, TimeSpan.FromHours(5.5)) },
        Sample.HealthCheck(),
        Sample.PlayStarted(userId: "ünïcödé", region: "eu-west-1"),
    ];

    [Fact]
    public void Round_trip_keeps_every_field_including_offsets_nulls_and_unicode()
    {
        var events = Mixed();
        var decoded = EventBatchCodec.Decode(EventBatchCodec.Encode(events));
        Assert.Equal(events, decoded);
        Assert.Equal(TimeSpan.FromHours(5.5), decoded[2].Timestamp.Offset);
        Assert.Null(decoded[1].Source.Region);
        Assert.Equal("ünïcödé", decoded[4].UserId);
    }

    [Fact]
    public void Decoded_events_own_their_bytes_so_the_buffer_they_came_from_can_be_reused()
    {
        // Ingest decodes a request from a pooled array and returns the array before the events go on.
        var events = Mixed();
        var buffer = EventBatchCodec.Encode(events);
        var decoded = EventBatchCodec.Decode(buffer);
        Array.Fill(buffer, (byte)'x');
        Assert.Equal(events, decoded);
        Assert.Equal(EventBatchCodec.Encode(events), EventBatchCodec.Encode(decoded));
    }

    [Fact]
    public void Records_are_self_contained_so_a_batch_is_its_header_plus_its_records()
    {
        var events = Mixed();
        var data = EventBatchCodec.Encode(events);
        Assert.Equal(EventBatchCodec.HeaderSize(events.Length) + events.Sum(EventBatchCodec.EncodedSize), data.Length);
        var ranges = EventBatchCodec.RecordRanges(data);
        Assert.Equal(events.Select(EventBatchCodec.EncodedSize), ranges.Select(r => r.Length));
        // Each record decodes on its own when given a header of its own.
        for (var i = 0; i < events.Length; i++)
        {
            var single = new byte[EventBatchCodec.HeaderSize(1) + ranges[i].Length];
            var p = EventBatchCodec.WriteHeader(single, 1);
            data.AsSpan(ranges[i].Start, ranges[i].Length).CopyTo(single.AsSpan(p));
            Assert.Equal(events[i], Assert.Single(EventBatchCodec.Decode(single)));
        }
    }

    [Fact]
    public void Timestamps_and_a_tail_can_be_read_without_decoding_everything()
    {
        var events = Mixed();
        var data = EventBatchCodec.Encode(events);
        Assert.Equal(events.Select(e => e.Timestamp.UtcTicks), EventBatchCodec.ReadUtcTicks(data));
        Assert.Equal(events[3..], EventBatchCodec.Decode(data, from: 3));
        Assert.Empty(EventBatchCodec.Decode(data, from: 99));
    }

    [Fact]
    public void An_empty_batch_round_trips()
    {
        Assert.Empty(EventBatchCodec.Decode(EventBatchCodec.Encode([])));
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { (byte)'X', 1, 0, 0 })]
    [InlineData(new byte[] { (byte)'K', 9, 0, 0 })]
    public void Garbage_is_refused_as_invalid_data(byte[] data)
    {
        Assert.Throws<InvalidDataException>(() => EventBatchCodec.Decode(data));
    }

    [Fact]
    public void Truncated_data_fails_loudly_rather_than_returning_partial_events()
    {
        var data = EventBatchCodec.Encode(Mixed());
        Assert.ThrowsAny<Exception>(() => EventBatchCodec.Decode(data.AsSpan(0, data.Length - 10)));
    }

    [Fact]
    public void A_batch_decodes_lazily_and_exposes_its_segments()
    {
        var events = Mixed();
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        var batch = new EventBatch(Guid.NewGuid(), 3, Sample.Now, events, [new BatchSegment(first, 2), new BatchSegment(second, 5)]);

        Assert.Equal([(first, 0, 2), (second, 2, 3)], batch.SegmentRanges().ToArray());
        Assert.Equal(events[2..], batch.EventsFrom(2));
        Assert.Equal(events.Select(e => e.Timestamp.UtcTicks), batch.UtcTicks());
        var parts = batch.Parts().ToArray();
        Assert.Equal(events[..2], parts[0].Events.ToArray());
        Assert.Equal(events[2..], parts[1].Events.ToArray());
    }

    [Fact]
    public void A_composed_batch_is_encoded_only_when_asked_and_then_as_if_encoded_at_once_even_across_hops_and_the_wire()
    {
        var events = Mixed();
        var fronting = new EventBatch(Guid.NewGuid(), 3, Sample.Now, events);
        var changed = events[1] with { EventType = "billing.payment.refunded" };
        // Hop 1 (a router): records 0, 2, 4 copied from the fronting batch, one event changed by a transform.
        var topic = EventBatch.Compose(Guid.NewGuid(), 3, Sample.Now,
            [new BatchItem(events[0], fronting, 0), new BatchItem(changed), new BatchItem(events[2], fronting, 2), new BatchItem(events[4], fronting, 4)]);
        // Hop 2 (an operator): part of the topic batch, copied again, before that batch was ever encoded.
        var regrouped = EventBatch.Compose(Guid.NewGuid(), 3, Sample.Now, [new BatchItem(changed, topic, 1), new BatchItem(events[4], topic, 3)]);

        Assert.False(topic.IsEncoded);
        Assert.False(regrouped.IsEncoded);
        var eager = EventBatchCodec.Encode([changed, events[4]]);
        Assert.Equal(eager.Length, regrouped.EncodedLength);
        Assert.False(regrouped.IsEncoded);
        Assert.Equal(eager, regrouped.Encoded.ToArray());
        Assert.Equal(EventBatchCodec.Encode([events[0], changed, events[2], events[4]]), topic.Encoded.ToArray());

        // Leaving the silo, a batch composed in memory is encoded by the serializer itself.
        var serializer = new ServiceCollection().AddSerializer()
            .BuildServiceProvider().GetRequiredService<Serializer>();
        var lazy = EventBatch.Compose(Guid.NewGuid(), 3, Sample.Now, [new BatchItem(events[3], fronting, 3), new BatchItem(changed)], [new BatchSegment(Guid.NewGuid(), 2)]);
        Assert.False(lazy.IsEncoded);
        var received = serializer.Deserialize<EventBatch>(serializer.SerializeToArray(lazy))!;
        Assert.Equal(EventBatchCodec.Encode([events[3], changed]), received.Encoded.ToArray());
        Assert.Equal([events[3].EventId, changed.EventId], received.Events.Select(e => e.EventId));
        Assert.Equal(lazy.SegmentRanges(), received.SegmentRanges());
    }

    [Fact]
    public void A_composed_batch_writes_its_encoded_form_into_a_frame_without_keeping_a_copy()
    {
        var events = Mixed();
        var fronting = new EventBatch(Guid.NewGuid(), 3, Sample.Now, events);
        var changed = events[1] with { EventType = "billing.payment.refunded" };
        var composed = EventBatch.Compose(Guid.NewGuid(), 3, Sample.Now, [new BatchItem(events[0], fronting, 0), new BatchItem(changed)]);
        var expected = EventBatchCodec.Encode([events[0], changed]);

        var frame = new byte[composed.EncodedLength + 8];
        Assert.Equal(expected.Length, composed.WriteEncoded(frame));
        Assert.Equal(expected, frame[..expected.Length]);
        Assert.False(composed.IsEncoded);

        // An encoded batch copies what it has.
        var plain = new EventBatch(Guid.NewGuid(), 3, Sample.Now, events);
        var copy = new byte[plain.EncodedLength];
        Assert.Equal(copy.Length, plain.WriteEncoded(copy));
        Assert.Equal(EventBatchCodec.Encode(events), copy);
    }

    [Fact]
    public void A_batch_without_segments_is_one_segment_named_by_its_id()
    {
        var id = Guid.NewGuid();
        var batch = new EventBatch(id, 0, Sample.Now, Mixed());
        Assert.Equal([(id, 0, 5)], batch.SegmentRanges().ToArray());
    }

    [Fact]
    public void The_binary_ingest_format_is_validated_like_json()
    {
        var good = Sample.PlayStarted();
        var bad = Sample.PlayStarted(quality: "8K");
        var body = EventBatchCodec.Encode([good, bad]);

        var parsed = EventBatchParser.Parse(body, BodyFormat.Binary, SchemaRegistry.Embedded, now: Sample.Now);

        Assert.Equal([good], parsed.Events);
        var rejection = Assert.Single(parsed.Rejections);
        Assert.Equal(1, rejection.Index);
        Assert.Equal(bad.EventId.ToString("D"), rejection.EventId);
        Assert.Equal("payload.quality: '8K' is not one of 4K, HD, SD", rejection.Error);
    }

    [Fact]
    public void Binary_payloads_must_be_single_line_json()
    {
        var sneaky = Sample.PlayStarted() with { Payload = Payload.FromTrustedCompactJson("{\"user_id\":\"u\",\n\"video_id\":\"v\"}"u8.ToArray()) };
        var parsed = EventBatchParser.Parse(EventBatchCodec.Encode([sneaky]), BodyFormat.Binary, SchemaRegistry.Embedded, now: Sample.Now);
        Assert.Equal("payload: must be compact JSON on one line", Assert.Single(parsed.Rejections).Error);
    }

    [Fact]
    public void A_malformed_binary_body_is_a_body_error()
    {
        var parsed = EventBatchParser.Parse([(byte)'K', 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], BodyFormat.Binary, SchemaRegistry.Embedded, now: Sample.Now);
        Assert.StartsWith("malformed binary batch:", parsed.BodyError);
        Assert.Empty(parsed.Events);
    }
    [Fact]
    public void A_batch_encoded_into_a_span_is_the_batch_Encode_returns()
    {
        var events = Mixed();
        var expected = EventBatchCodec.Encode(events);
        var buffer = new byte[EventBatchCodec.EncodedSize((IReadOnlyList<KeystoneEvent>)events) + 7];

        var written = EventBatchCodec.Encode(events, buffer);

        Assert.Equal(expected.Length, written);
        Assert.Equal(expected, buffer[..written]);
    }

    [Fact]
    public void A_record_writes_the_same_json_as_its_event_and_reads_its_key_and_metadata_without_decoding()
    {
        var events = Mixed().Append(Sample.PlayStarted(userId: "q\"uote<tag>&\u2028", metadata: EventMetadata.Empty.With("weird key\t", "välue \"x\"").With("replayed_from_lake", "true"))).ToArray();
        var data = EventBatchCodec.Encode(events);
        var ranges = EventBatchCodec.RecordRanges(data);
        for (var i = 0; i < events.Length; i++)
        {
            var record = data.AsSpan(ranges[i].Start, ranges[i].Length);
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer, EventJson.WriterOptions)) EventBatchCodec.WriteJson(w, record);
            Assert.Equal(EventJson.Serialize(events[i]), System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
            Assert.Equal((events[i].EventId, events[i].Timestamp), EventBatchCodec.ReadKey(record));
            Assert.Equal(events[i], EventBatchCodec.DecodeRecord(record));
            Assert.Equal(i == events.Length - 1, EventBatchCodec.HasMetadata(record, "replayed_from_lake"u8));
        }
    }
}
