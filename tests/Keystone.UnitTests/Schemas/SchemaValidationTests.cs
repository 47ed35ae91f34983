using Keystone.Events;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Schemas;

public class SchemaValidationTests
{
    private static readonly SchemaRegistry Registry = SchemaRegistry.Embedded;

    private static ValidationError? Validate(KeystoneEvent e, ValidationLimits? limits = null, int? size = null) =>
        Registry.Validate(e, limits, size, Sample.Now);

    private static KeystoneEvent Play(params (string Name, object? Value)[] payload) =>
        Sample.PlayStarted() with { Payload = Payload.Create(payload) };

    private static readonly (string, object?)[] ValidPlay =
        [("user_id", "user-123"), ("profile_id", "profile-456"), ("video_id", "v1"), ("position_ms", 0), ("quality", "4K")];

    private static (string, object?)[] PlayWith(string name, object? value) =>
        [.. ValidPlay.Where(f => f.Item1 != name), (name, value)];

    [Fact]
    public void Every_brief_event_type_ships_a_schema()
    {
        Assert.Equal(
            [
                "ad.click", "ad.complete", "ad.first_quartile", "ad.impression", "ad.midpoint", "ad.skip", "ad.third_quartile",
                "billing.payment_processed", "billing.subscription_created", "billing.subscription_renewed",
                "content.added", "content.metadata_updated",
                "profile.created",
                // Emitted by the aggregations themselves, in the same envelope.
                "recommendation.update_requested",
                "system.error_logged", "system.health_check",
                "user.activity.window", "user.login", "user.logout", "user.profile_switch",
                "video.play.paused", "video.play.resumed", "video.play.seeked", "video.play.started", "video.play.stopped",
            ],
            Registry.EventTypes);
        Assert.Equal(26, Registry.All.Count());
        Assert.Equal(["1.0", "1.1"], Registry.Versions("video.play.started").Select(s => s.Version));
    }

    [Fact]
    public void The_seed_event_is_valid() => Assert.Null(Validate(Sample.PlayStarted()));

    [Fact]
    public void Missing_required_payload_field()
    {
        var error = Validate(Play([.. ValidPlay.Where(f => f.Item1 != "video_id")]));
        Assert.Equal(new ValidationError("payload.video_id", "is required by video.play.started 1.0"), error);
    }

    [Fact]
    public void Wrong_type_string_for_integer()
    {
        var error = Validate(Play(PlayWith("position_ms", "12")));
        Assert.Equal(new ValidationError("payload.position_ms", "expected integer, got string"), error);
    }

    [Fact]
    public void Fraction_for_integer()
    {
        var error = Validate(Play(PlayWith("position_ms", 1.5)));
        Assert.Equal(new ValidationError("payload.position_ms", "expected integer, got 1.5"), error);
    }

    [Fact]
    public void Enum_violation_lists_the_allowed_values()
    {
        var error = Validate(Play(PlayWith("quality", "8K")));
        Assert.Equal(new ValidationError("payload.quality", "'8K' is not one of 4K, HD, SD"), error);
    }

    [Fact]
    public void Below_minimum()
    {
        var error = Validate(Play(PlayWith("position_ms", -1)));
        Assert.Equal(new ValidationError("payload.position_ms", "-1 is less than the minimum 0"), error);
    }

    [Fact]
    public void Empty_string_where_min_length_is_one()
    {
        var error = Validate(Play(PlayWith("user_id", "")));
        Assert.Equal(new ValidationError("payload.user_id", "must not be empty"), error);
    }

    [Fact]
    public void Pattern_violation()
    {
        var payment = Sample.Payment();
        var error = Validate(payment with { Payload = payment.Payload.With(("currency", "usd")) });
        Assert.Equal(new ValidationError("payload.currency", "'usd' does not match the pattern ^[A-Z]{3}$"), error);
    }

    [Fact]
    public void Unknown_payload_field_when_additional_properties_are_off()
    {
        var error = Validate(Play(PlayWith("mood", "happy")));
        Assert.Equal("payload.mood", error!.Field);
        Assert.StartsWith("is not a field of video.play.started 1.0 (fields: user_id, profile_id, video_id, device_id,", error.Reason);
    }

    [Fact]
    public void Null_for_a_non_nullable_field()
    {
        var error = Validate(Play(PlayWith("quality", null)));
        Assert.Equal(new ValidationError("payload.quality", "must not be null (expected string)"), error);
    }

    [Fact]
    public void Nullable_field_accepts_null_in_version_1_1_only()
    {
        var v11 = Play([.. ValidPlay, ("subtitle_language", null)]) with { Version = "1.1" };
        Assert.Null(Validate(v11));
        Assert.Null(Validate(v11 with { Payload = v11.Payload.With(("subtitle_language", "en")) }));

        var v10 = v11 with { Version = "1.0" };
        Assert.Equal("payload.subtitle_language", Validate(v10)!.Field);
    }

    [Fact]
    public void Array_items_are_checked()
    {
        var content = Sample.Of("content.added", Payload.Create(("video_id", "v1"), ("title", "T"), ("genres", new object[] { "drama", 7 })));
        Assert.Equal(new ValidationError("payload.genres[1]", "expected string, got number"), Validate(content));

        var tooMany = Sample.Of("content.added", Payload.Create(("video_id", "v1"), ("title", "T"), ("genres", Enumerable.Range(0, 17).Select(i => $"g{i}").ToArray())));
        Assert.Equal(new ValidationError("payload.genres", "has 17 items; at most 16 are allowed"), Validate(tooMany));
    }

    [Fact]
    public void Date_time_format_is_checked()
    {
        var renewed = Sample.Of("billing.subscription_renewed", Payload.Create(
            ("user_id", "u1"), ("subscription_id", "s1"), ("plan", "basic"), ("amount", 7.99), ("currency", "EUR"), ("period_end", "next tuesday")));
        Assert.Equal(new ValidationError("payload.period_end", "'next tuesday' is not an ISO-8601 date-time with an offset"), Validate(renewed));
        Assert.Null(Validate(renewed with { Payload = renewed.Payload.With(("period_end", "2025-01-26T00:00:00Z")) }));
    }

    [Fact]
    public void Unknown_event_type_suggests_a_near_miss()
    {
        var error = Validate(Sample.PlayStarted(eventType: "video.play.strated"));
        Assert.Equal(new ValidationError("event_type", "unknown event type 'video.play.strated' (did you mean 'video.play.started'?)"), error);
    }

    [Fact]
    public void Unknown_event_type_far_from_everything_has_no_suggestion()
    {
        var error = Validate(Sample.PlayStarted(eventType: "weather.report.issued"));
        Assert.Equal(new ValidationError("event_type", "unknown event type 'weather.report.issued'"), error);
    }

    [Fact]
    public void Unknown_version_lists_the_known_ones()
    {
        var error = Validate(Sample.PlayStarted() with { Version = "2.0" });
        Assert.Equal(new ValidationError("version", "unknown version '2.0' of 'video.play.started' (known: 1.0, 1.1)"), error);
    }

    [Fact]
    public void Nil_uuid_is_refused()
    {
        var error = Validate(Sample.PlayStarted(id: Guid.Empty));
        Assert.Equal(new ValidationError("event_id", "must be a UUID other than the nil UUID"), error);
    }

    [Fact]
    public void An_event_of_unknown_size_is_measured_when_it_could_be_over_the_limit()
    {
        // Decoded events (the SDK's binary batches) come without their size: far under the limit they are not written
        // out to be measured, and near it they are, so the refusal gives the exact size.
        var e = Sample.PlayStarted();
        var size = EventJson.SizeOf(e);
        Assert.True(EventJson.SizeBound(e) > size, "the bound is a bound, not the size");
        Assert.Null(Validate(e, new ValidationLimits { MaxEventBytes = (int)EventJson.SizeBound(e) }));
        Assert.Null(Validate(e, new ValidationLimits { MaxEventBytes = size }));
        Assert.Equal(new ValidationError("event", $"is {size} bytes as JSON; the limit is {size - 1} bytes"),
            Validate(e, new ValidationLimits { MaxEventBytes = size - 1 }));
    }

    [Fact]
    public void Oversized_event_is_refused_by_its_reported_size()
    {
        var limits = new ValidationLimits { MaxEventBytes = 1000 };
        Assert.Null(Validate(Sample.PlayStarted(), limits, size: 1000));
        Assert.Equal(new ValidationError("event", "is 1001 bytes as JSON; the limit is 1000 bytes"), Validate(Sample.PlayStarted(), limits, size: 1001));
    }

    [Fact]
    public void Oversized_event_is_measured_when_no_size_is_given()
    {
        var e = Sample.PlayStarted();
        var size = EventJson.SizeOf(e);
        Assert.Equal(EventJson.SerializeToUtf8(e).Length, size);
        Assert.Null(Validate(e, new ValidationLimits { MaxEventBytes = size }));
        Assert.Equal("event", Validate(e, new ValidationLimits { MaxEventBytes = size - 1 })!.Field);
    }

    [Fact]
    public void Timestamp_too_far_in_the_future()
    {
        var e = Sample.PlayStarted() with { Timestamp = Sample.Now.AddMinutes(61) };
        Assert.Equal(new ValidationError("timestamp", "2024-12-26T13:01:00.0000000+00:00 is more than 01:00:00 in the future"), Validate(e));
        Assert.Null(Validate(e with { Timestamp = Sample.Now.AddMinutes(59) }));
        Assert.Null(Validate(e, new ValidationLimits { MaxFutureSkew = null }));
    }

    [Fact]
    public void Envelope_limits_are_checked_before_the_schema()
    {
        Assert.Equal(new ValidationError("source.service", "is required"), Validate(Sample.PlayStarted() with { Source = new EventSource(" ") }));
        var manyEntries = EventMetadata.From(Enumerable.Range(0, 33).Select(i => new KeyValuePair<string, string>($"k{i}", "v")));
        Assert.Equal(new ValidationError("metadata", "has 33 entries; at most 32 are allowed"), Validate(Sample.PlayStarted(metadata: manyEntries)));
        var longValue = EventMetadata.Of(("trace_id", new string('t', 1025)));
        Assert.Equal(new ValidationError("metadata.trace_id", "is longer than 1024 characters"), Validate(Sample.PlayStarted(metadata: longValue)));
    }

    [Fact]
    public void With_adds_a_schema_without_changing_the_receiver()
    {
        var custom = new EventSchema("custom.thing", "1.0", [new FieldSchema { Name = "n", Type = FieldType.Integer, Required = true, Maximum = 10 }]);
        var extended = Registry.With(custom);

        Assert.False(Registry.TryGet("custom.thing", "1.0", out _));
        Assert.True(extended.TryGet("custom.thing", "1.0", out var found));
        Assert.Same(custom, found);
        var e = Sample.Of("custom.thing", Payload.Create(("n", 11)));
        Assert.Equal(new ValidationError("payload.n", "11 is greater than the maximum 10"), extended.Validate(e, now: Sample.Now));
    }

    [Fact]
    public void Versions_sort_numerically()
    {
        Assert.Equal(["1.2", "1.9", "1.10", "2.0"], new[] { "1.10", "2.0", "1.9", "1.2" }.Order(VersionComparer.Instance));
    }

    [Fact]
    public void The_lake_replay_marker_is_refused_unless_the_archive_replay_sends_it()
    {
        var play = Sample.PlayStarted();
        var marked = play with { Metadata = play.Metadata.With(ValidationLimits.LakeReplayKey, "true") };
        var error = Validate(marked);
        Assert.Equal("metadata.replayed_from_lake", error?.Field);
        Assert.Contains("reserved", error!.Reason);
        Assert.Null(Validate(marked, new ValidationLimits { AllowLakeReplayMarker = true }));
    }
}
