using Keystone.Events;
using Keystone.Routing;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Routing;

public class TransformTests
{
    private static readonly RouteContext Context = new("rule-a", "topic-a", 5, new DateTimeOffset(2024, 12, 26, 12, 0, 1, 500, TimeSpan.Zero));

    private static MaskPiiTransform Mask(MaskMode mode = MaskMode.Hash, string salt = "pepper", IEnumerable<string>? fields = null, IEnumerable<string>? defaults = null) =>
        new(fields, defaults ?? ["email", "ip_address", "card_last4", "billing_address", "phone"], mode, salt, SchemaRegistry.Embedded);

    [Fact]
    public void Hash_mode_is_a_keyed_sha256_prefix()
    {
        // Pinned from an independent HMAC-SHA256("pepper", "jane@example.com").
        Assert.Equal("sha256:1c5ece9926f32bef", Mask(salt: "pepper").MaskValue("jane@example.com"));
        Assert.Equal("sha256:fd7a0a5016f3bf5a", Mask(salt: "salt-b").MaskValue("jane@example.com"));
        Assert.Matches("^sha256:[0-9a-f]{16}$", Mask().MaskValue("4242"));
    }

    [Fact]
    public void Hash_mode_is_stable_and_salt_dependent()
    {
        var a = Mask(salt: "one");
        Assert.Equal(a.MaskValue("x@y.z"), Mask(salt: "one").MaskValue("x@y.z"));
        Assert.NotEqual(a.MaskValue("x@y.z"), Mask(salt: "two").MaskValue("x@y.z"));
        Assert.NotEqual(a.MaskValue("x@y.z"), a.MaskValue("x@y.zz"));
    }

    [Fact]
    public void Hash_mode_masks_default_fields_and_keeps_the_rest()
    {
        var e = Sample.Payment();
        var masked = Mask(salt: "pepper").Apply(e, Context)!;

        Assert.Equal(
            """{"user_id":"user-123","payment_id":"pay-1","amount":15.49,"currency":"USD","status":"succeeded","card_last4":"sha256:b13d07ad1e00d395","email":"sha256:1c5ece9926f32bef"}""",
            masked.Payload.ToString());
        Assert.Equal(e.EventId, masked.EventId);
        Assert.Equal("jane@example.com", e.Payload.GetString("email"));
    }

    [Fact]
    public void Mask_mode_replaces_values_with_stars()
    {
        var masked = Mask(MaskMode.Mask).Apply(Sample.Payment(), Context)!;
        Assert.Equal("***", masked.Payload.GetString("email"));
        Assert.Equal("***", masked.Payload.GetString("card_last4"));
        Assert.Equal("USD", masked.Payload.GetString("currency"));
    }

    [Fact]
    public void Default_fields_include_the_schemas_x_pii_fields()
    {
        // No configured defaults at all: whatever is masked comes from the schema's "x-pii": true marks.
        var schemaOnly = Mask(MaskMode.Mask, defaults: []);
        var subscription = Sample.Of("billing.subscription_created", Payload.Create(
            ("user_id", "u1"), ("subscription_id", "s1"), ("plan", "premium"), ("amount", 15.49), ("currency", "USD"), ("email", "a@b.c"), ("card_last4", "1234")));
        var profile = Sample.Of("profile.created", Payload.Create(("user_id", "u1"), ("profile_id", "p1"), ("profile_name", "Kids room")));

        Assert.Equal(["card_last4", "email"], schemaOnly.FieldsFor(subscription).Order());
        Assert.Equal(["profile_name"], schemaOnly.FieldsFor(profile));
        Assert.Equal("***", schemaOnly.Apply(subscription, Context)!.Payload.GetString("email"));
        Assert.Equal("***", schemaOnly.Apply(profile, Context)!.Payload.GetString("profile_name"));
        Assert.Equal("u1", schemaOnly.Apply(profile, Context)!.Payload.GetString("user_id"));

        // With the configured defaults, the schema's fields are added to them.
        Assert.Equal(["billing_address", "card_last4", "email", "ip_address", "phone", "profile_name"], Mask().FieldsFor(profile).Order());
    }

    [Fact]
    public void An_explicit_field_list_replaces_the_defaults()
    {
        var mask = Mask(MaskMode.Mask, fields: ["payment_id"]);
        var masked = mask.Apply(Sample.Payment(), Context)!;

        Assert.Equal("***", masked.Payload.GetString("payment_id"));
        Assert.Equal("jane@example.com", masked.Payload.GetString("email"));
    }

    [Fact]
    public void Masking_an_event_without_pii_returns_the_same_instance()
    {
        var health = Sample.HealthCheck();
        Assert.Same(health, Mask().Apply(health, Context));
    }

    [Fact]
    public void Null_and_array_values_are_not_masked()
    {
        var e = Sample.Of("custom.thing", Payload.Create(("email", null), ("phone", new[] { "1", "2" })));
        Assert.Same(e, Mask(MaskMode.Mask).Apply(e, Context));
    }

    [Fact]
    public void Numbers_in_pii_fields_are_masked_as_strings()
    {
        var e = Sample.Of("custom.thing", Payload.Create(("phone", 5551234)));
        Assert.Equal("""{"phone":"***"}""", Mask(MaskMode.Mask).Apply(e, Context)!.Payload.ToString());
    }

    [Fact]
    public void Enrich_adds_routing_facts_and_extras_without_touching_the_original()
    {
        var original = Sample.PlayStarted();
        var enriched = new EnrichTransform(new Dictionary<string, string> { ["team"] = "growth", ["trace_id"] = "overridden" }).Apply(original, Context)!;

        Assert.Equal(
            [
                ("trace_id", "overridden"), ("correlation_id", "corr-101"), ("routed_by", "rule-a"),
                ("routed_at", "2024-12-26T12:00:01.5Z"), ("partition", "5"), ("topic", "topic-a"), ("team", "growth"),
            ],
            enriched.Metadata.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal([("trace_id", "trace-789"), ("correlation_id", "corr-101")], original.Metadata.Select(kv => (kv.Key, kv.Value)));
        Assert.Same(original.Payload, enriched.Payload);
        Assert.Equal(original.EventId, enriched.EventId);
    }

    [Fact]
    public void Project_keeps_only_listed_fields_in_their_original_order()
    {
        var projected = new ProjectTransform(["quality", "user_id", "not_there"]).Apply(Sample.PlayStarted(), Context)!;
        Assert.Equal("""{"user_id":"user-123","quality":"4K"}""", projected.Payload.ToString());
    }

    [Fact]
    public void Project_of_every_field_returns_the_same_event()
    {
        var e = Sample.HealthCheck();
        Assert.Same(e, new ProjectTransform(["component", "status"]).Apply(e, Context));
    }

    [Fact]
    public void Drop_removes_listed_fields()
    {
        var e = Sample.PlayStarted();
        var dropped = new DropFieldsTransform(["video_id", "position_ms", "absent"]).Apply(e, Context)!;

        Assert.Equal("""{"user_id":"user-123","profile_id":"profile-456","quality":"4K"}""", dropped.Payload.ToString());
        Assert.True(e.Payload.Has("video_id"));
        Assert.Same(e, new DropFieldsTransform(["absent"]).Apply(e, Context));
    }

    [Fact]
    public void Filter_passes_matching_events_and_returns_null_otherwise()
    {
        var filter = new FilterTransform(new RuleCondition([new AttributeTest("payload.quality", [new Glob("4K"), new Glob("HD")])]));
        var uhd = Sample.PlayStarted(quality: "4K");

        Assert.Same(uhd, filter.Apply(uhd, Context));
        Assert.NotNull(filter.Apply(Sample.PlayStarted(quality: "HD"), Context));
        Assert.Null(filter.Apply(Sample.PlayStarted(quality: "SD"), Context));
        Assert.Null(filter.Apply(Sample.HealthCheck(), Context));
    }
}
