using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ingest;

/// <summary>Ingest refuses a bad entity id per event, naming the field, on the JSON path and the SDK's binary path alike.</summary>
public class EntityIdIngestTests
{
    private static readonly (string, object?)[] Impression =
    [
        ("campaign_id", "camp-1"), ("ad_id", "ad-1"), ("creative_id", "cr-1"), ("user_id", "u-1"), ("profile_id", "p-1"),
        ("device_id", "d-1"), ("ad_session_id", "as-1"), ("video_id", "v-1"), ("cost_micros", 1000),
    ];

    private static readonly (string, object?)[] Play =
    [
        ("user_id", "u-1"), ("profile_id", "p-1"), ("video_id", "v-1"), ("device_id", "d-1"), ("position_ms", 0),
        ("quality", "HD"), ("genre", "drama"), ("series_id", "s-1"),
    ];

    private static readonly (string, object?)[] Content = [("video_id", "v-1"), ("title", "T"), ("series_id", "s-1"), ("genres", new[] { "drama", "crime" })];

    private static readonly (string, object?)[] Switch = [("user_id", "u-1"), ("from_profile_id", "p-0"), ("profile_id", "p-1"), ("device_id", "d-1")];

    private static KeystoneEvent With(string eventType, (string Name, object? Value)[] fields, string field, object? value) =>
        Sample.Of(eventType, Payload.Create([.. fields.Select(f => f.Name == field ? (f.Name, value) : f)]));

    // Every entity-id field of the payloads, in an event type that carries it.
    public static TheoryData<string, string> Fields => new()
    {
        { "ad.impression", "campaign_id" }, { "ad.impression", "ad_id" }, { "ad.impression", "creative_id" },
        { "ad.impression", "user_id" }, { "ad.impression", "profile_id" }, { "ad.impression", "device_id" },
        { "ad.impression", "ad_session_id" }, { "ad.impression", "video_id" },
        { "video.play.started", "user_id" }, { "video.play.started", "profile_id" }, { "video.play.started", "video_id" },
        { "video.play.started", "device_id" }, { "video.play.started", "genre" }, { "video.play.started", "series_id" },
        { "content.added", "video_id" }, { "content.added", "series_id" },
        { "user.profile_switch", "from_profile_id" },
    };

    private static (string, object?)[] FieldsOf(string eventType) => eventType switch
    {
        "ad.impression" => Impression,
        "video.play.started" => Play,
        "content.added" => Content,
        _ => Switch,
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public void Each_id_field_is_checked_on_both_paths(string eventType, string field)
    {
        var good = With(eventType, FieldsOf(eventType), field, "josé-ñ.用户");
        foreach (var bad in new[] { "nul\0\u202Eevil", "with space", "with/slash", "zw\u200B" })
        {
            var e = With(eventType, FieldsOf(eventType), field, bad);
            var json = Assert.Single(Json(e).Rejections);
            Assert.Equal($"payload.{field}", json.Field);
            Assert.StartsWith($"payload.{field}: must not contain", json.Error);
            var binary = Assert.Single(EventBatchParser.ValidateDecoded([e], SchemaRegistry.Embedded, now: Sample.Now).Rejections);
            Assert.Equal(json, binary);
        }
        Assert.Empty(Json(good).Rejections);
        Assert.Empty(EventBatchParser.ValidateDecoded([good], SchemaRegistry.Embedded, now: Sample.Now).Rejections);
    }

    [Fact]
    public void Genres_are_ids_item_by_item()
    {
        var e = With("content.added", Content, "genres", new[] { "drama", "true crime" });
        var rejection = Assert.Single(Json(e).Rejections);
        Assert.Equal("payload.genres[1]", rejection.Field);
        Assert.Contains("whitespace", rejection.Error);
    }

    [Fact]
    public void Too_long_ids_and_dot_names_are_refused_and_128_characters_pass()
    {
        Assert.Contains("at most 128", Assert.Single(Json(With("video.play.started", Play, "video_id", new string('v', 129))).Rejections).Error);
        Assert.Contains("'.' or '..'", Assert.Single(Json(With("video.play.started", Play, "user_id", "..")).Rejections).Error);
        Assert.Empty(Json(With("video.play.started", Play, "video_id", new string('v', 128))).Rejections);
    }

    [Fact]
    public void Escaped_forms_are_judged_by_what_they_mean()
    {
        var e = With("video.play.started", Play, "user_id", "placeholder");
        var text = EventJson.Serialize(e);
        string Replace(string escaped) => text.Replace("\"placeholder\"", escaped, StringComparison.Ordinal);

        // A JSON escape of an allowed character is fine; escapes of refused ones are refused like the raw characters.
        Assert.Empty(Parse(Replace("\"jos\\u00e9\"")).Rejections);
        Assert.Contains("bidirectional", Assert.Single(Parse(Replace("\"a\\u202eb\"")).Rejections).Error);
        Assert.Contains("control", Assert.Single(Parse(Replace("\"a\\u0000b\"")).Rejections).Error);
        Assert.Contains("'/'", Assert.Single(Parse(Replace("\"a\\/b\"")).Rejections).Error);
        var surrogate = Assert.Single(Parse(Replace("\"a\\ud800b\"")).Rejections);
        Assert.Equal("payload.user_id", surrogate.Field);
        Assert.Contains("lone surrogate", surrogate.Error);
    }

    [Fact]
    public void A_lone_surrogate_elsewhere_in_the_envelope_is_a_rejection_not_a_crash()
    {
        var e = Sample.PlayStarted(metadata: EventMetadata.Of(("trace_id", "placeholder")));
        var line = EventJson.Serialize(e).Replace("\"placeholder\"", "\"a\\udc00\"", StringComparison.Ordinal);
        var ndjson = EventBatchParser.Parse(Encoding.UTF8.GetBytes($"{line}\n{EventJson.Serialize(Sample.PlayStarted())}\n"), BodyFormat.Ndjson, SchemaRegistry.Embedded, now: Sample.Now);
        Assert.Single(ndjson.Events);
        Assert.Contains("malformed JSON", Assert.Single(ndjson.Rejections).Error);
        Assert.StartsWith("malformed JSON", Parse(line).BodyError);
    }

    [Fact]
    public void An_undeclared_field_named_like_an_id_is_checked_where_a_schema_allows_extra_fields()
    {
        var open = new EventSchema("custom.open", "1.0", [new FieldSchema { Name = "note", Type = FieldType.String }], additionalProperties: true);
        Assert.Equal("payload.user_id", SchemaRegistry.ValidatePayload(open, Payload.Create(("note", "x"), ("user_id", "a b")).Utf8)?.Field);
        Assert.Equal("payload.genres[0]", SchemaRegistry.ValidatePayload(open, Payload.Create(("genres", new[] { "a\u202E" })).Utf8)?.Field);
        Assert.Null(SchemaRegistry.ValidatePayload(open, Payload.Create(("user_id", "josé"), ("other", "a b")).Utf8));
    }

    private static ParsedBatch Json(KeystoneEvent e) => Parse(EventJson.Serialize(e));

    private static ParsedBatch Parse(string json) =>
        EventBatchParser.Parse(Encoding.UTF8.GetBytes($"[{json}]"), BodyFormat.JsonArray, SchemaRegistry.Embedded, now: Sample.Now);
}
