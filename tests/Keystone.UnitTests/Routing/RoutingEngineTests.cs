using Keystone.Events;
using Keystone.Routing;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Routing;

public class RoutingEngineTests
{
    // Verbatim from the mission brief (its routing example; docs/architecture.md, Events, schemas and routing), so the DSL keeps accepting what the brief promises.
    public const string BriefYaml = """
        routing-rules:
          - name: "playback-to-analytics"
            condition: { event-type: "video.play.*" }
            destinations:
              - { topic: "analytics-playback-events", priority: HIGH }
              - { topic: "ml-recommendation-input",   priority: NORMAL }
          - name: "billing-events"
            condition: { event-type: "billing.*", region: "us-*" }
            destinations:
              - topic: "billing-events-us"
                transform: [ mask-pii-fields ]
          - name: "all-events-archive"
            condition: "*"
            destinations:
              - { topic: "archive-all-events", priority: LOW }
        """;

    private static RoutingEngine Engine(string yaml, TransformSettings? settings = null) =>
        new(RuleSetParser.Parse(yaml, "test.yaml", settings ?? TransformSettings.Default()));

    private static RoutedBatch Route(string yaml, params KeystoneEvent[] events) => Engine(yaml).Route(events, 3, Sample.Now);

    private static Dictionary<string, Priority> TopicsOf(RoutedBatch batch) =>
        batch.Topics.Values.ToDictionary(t => t.Topic, t => t.Priority);

    [Fact]
    public void The_brief_example_loads_with_its_three_rules()
    {
        var rules = RuleSetParser.Parse(BriefYaml, "brief", TransformSettings.Default());

        Assert.Equal(["playback-to-analytics", "billing-events", "all-events-archive"], rules.Rules.Select(r => r.Name));
        Assert.True(rules.Rules[2].Condition.IsMatchAll);
        Assert.Equal(
            new Dictionary<string, Priority>
            {
                ["analytics-playback-events"] = Priority.High,
                ["ml-recommendation-input"] = Priority.Normal,
                ["billing-events-us"] = Priority.Normal,
                ["archive-all-events"] = Priority.Low,
            },
            rules.StaticTopics);
        Assert.Equal(16, rules.Hash.Length);
    }

    [Fact]
    public void Playback_event_fans_out_to_analytics_ml_and_archive()
    {
        var play = Sample.PlayStarted();
        var batch = Route(BriefYaml, play);

        Assert.Equal(
            new Dictionary<string, Priority>
            {
                ["analytics-playback-events"] = Priority.High,
                ["ml-recommendation-input"] = Priority.Normal,
                ["archive-all-events"] = Priority.Low,
            },
            TopicsOf(batch));
        Assert.All(batch.Topics.Values, t => Assert.Same(play, Assert.Single(t.Events)));
        Assert.Equal(3, batch.Deliveries);
        Assert.Empty(batch.Unrouted);
        Assert.Equal(0, batch.Filtered);
    }

    [Fact]
    public void Us_billing_event_goes_masked_to_billing_and_unmasked_to_archive()
    {
        var payment = Sample.Payment(region: "us-east-1");
        var batch = Route(BriefYaml, payment);

        Assert.Equal(["archive-all-events", "billing-events-us"], batch.Topics.Keys.Order());
        var billing = Assert.Single(batch.Topics["billing-events-us"].Events);
        Assert.Equal(Priority.Normal, batch.Topics["billing-events-us"].Priority);
        Assert.Equal(payment.EventId, billing.EventId);
        // Empty salt (the default) keys the HMAC with no bytes; values pinned from an independent HMAC-SHA256.
        Assert.Equal("sha256:07f7fa094ff47bc2", billing.Payload.GetString("email"));
        Assert.Equal("sha256:6299f61fad9c0e62", billing.Payload.GetString("card_last4"));
        Assert.Equal("pay-1", billing.Payload.GetString("payment_id"));

        var archived = Assert.Single(batch.Topics["archive-all-events"].Events);
        Assert.Same(payment, archived);
        Assert.Equal("jane@example.com", archived.Payload.GetString("email"));
    }

    [Fact]
    public void Non_us_billing_event_only_reaches_the_archive()
    {
        var batch = Route(BriefYaml, Sample.Payment(region: "eu-west-1"));
        Assert.Equal(["archive-all-events"], batch.Topics.Keys);
    }

    [Fact]
    public void Billing_event_without_region_does_not_match_a_region_glob()
    {
        var batch = Route(BriefYaml, Sample.Payment(region: null));
        Assert.Equal(["archive-all-events"], batch.Topics.Keys);
    }

    [Fact]
    public void ByPriority_orders_high_then_normal_then_low()
    {
        var batch = Route(BriefYaml, Sample.PlayStarted(), Sample.Payment());

        var groups = batch.ByPriority.ToList();
        Assert.Equal([Priority.High, Priority.Normal, Priority.Low], groups.Select(g => g.Key));
        Assert.Equal(["analytics-playback-events"], groups[0].Select(t => t.Topic));
        Assert.Equal(["billing-events-us", "ml-recommendation-input"], groups[1].Select(t => t.Topic).Order());
        Assert.Equal(["archive-all-events"], groups[2].Select(t => t.Topic));
        Assert.Equal(2, batch.Topics["archive-all-events"].Events.Count);
    }

    [Fact]
    public void A_list_of_globs_matches_when_any_glob_matches()
    {
        const string yaml = """
            routing-rules:
              - name: "identity"
                condition: { event-type: ["user.*", "profile.*"], region: ["eu-*", "ap-*"] }
                destinations:
                  - { topic: "identity-intl" }
            """;
        var engine = Engine(yaml);
        KeystoneEvent Login(string region) => Sample.Of("user.login", Payload.Create(("user_id", "u1"), ("device_id", "d1")), region);

        Assert.Equal(["identity-intl"], engine.Route([Login("eu-west-1")], 0, Sample.Now).Topics.Keys);
        Assert.Equal(["identity-intl"], engine.Route([Sample.Of("profile.created", Payload.Create(("user_id", "u1"), ("profile_id", "p1")), "ap-south-1")], 0, Sample.Now).Topics.Keys);
        Assert.Single(engine.Route([Login("us-east-1")], 0, Sample.Now).Unrouted);
        Assert.Single(engine.Route([Sample.PlayStarted(region: "eu-west-1")], 0, Sample.Now).Unrouted);
    }

    [Fact]
    public void User_segment_comes_from_metadata_before_payload()
    {
        const string yaml = """
            routing-rules:
              - name: "premium"
                condition: { user-segment: "premium*" }
                destinations:
                  - { topic: "premium-events" }
            """;
        var engine = Engine(yaml);
        var fromMetadata = Sample.PlayStarted(metadata: EventMetadata.Of(("user_segment", "premium-plus")));
        var otherSegment = Sample.PlayStarted(metadata: EventMetadata.Of(("user_segment", "basic")));
        var noSegment = Sample.PlayStarted(metadata: EventMetadata.Empty);

        var batch = engine.Route([fromMetadata, otherSegment, noSegment], 0, Sample.Now);

        Assert.Same(fromMetadata, Assert.Single(batch.Topics["premium-events"].Events));
        Assert.Equal([otherSegment, noSegment], batch.Unrouted);
        Assert.Equal("premium-plus", EventAttributes.SegmentOf(fromMetadata));
        Assert.Null(EventAttributes.SegmentOf(noSegment));
    }

    [Fact]
    public void User_segment_falls_back_to_the_payload_field()
    {
        var e = Sample.Of("user.login", Payload.Create(("user_id", "u1"), ("user_segment", "kids")));
        Assert.Equal("kids", EventAttributes.SegmentOf(e));
        var both = e with { Metadata = EventMetadata.Of(("user_segment", "adult")) };
        Assert.Equal("adult", EventAttributes.SegmentOf(both));
    }

    [Fact]
    public void Payload_and_metadata_fields_can_be_conditions()
    {
        const string yaml = """
            routing-rules:
              - name: "4k-from-tvs"
                condition: { event-type: "video.play.*", payload.quality: "4K", metadata.trace_id: "trace-*" }
                destinations:
                  - { topic: "uhd-starts" }
              - name: "long-positions"
                condition: { payload.position_ms: "1????" }
                destinations:
                  - { topic: "deep-positions" }
            """;
        var engine = Engine(yaml);
        var uhd = Sample.PlayStarted(quality: "4K");
        var hd = Sample.PlayStarted(quality: "HD");
        var deep = Sample.Of("video.play.paused", Payload.Create(("user_id", "u"), ("position_ms", 12345)));

        var batch = engine.Route([uhd, hd, deep], 0, Sample.Now);

        Assert.Same(uhd, Assert.Single(batch.Topics["uhd-starts"].Events));
        // Numbers are compared as written, so a glob can test their digits.
        Assert.Same(deep, Assert.Single(batch.Topics["deep-positions"].Events));
        Assert.Equal([hd], batch.Unrouted);
    }

    [Fact]
    public void Disabled_rules_route_nothing()
    {
        const string yaml = """
            routing-rules:
              - name: "off"
                enabled: false
                condition: "*"
                destinations:
                  - { topic: "never" }
              - name: "on"
                enabled: true
                condition: { event-type: "video.*" }
                destinations:
                  - { topic: "video-events" }
            """;
        var rules = RuleSetParser.Parse(yaml, "t", TransformSettings.Default());
        Assert.False(rules.Rules[0].Enabled);

        var batch = new RoutingEngine(rules).Route([Sample.PlayStarted(), Sample.Payment()], 0, Sample.Now);

        Assert.Equal(["video-events"], batch.Topics.Keys);
        Assert.Equal("billing.payment_processed", Assert.Single(batch.Unrouted).EventType);
    }

    [Fact]
    public void A_topic_named_by_two_rules_gets_the_event_once_with_the_first_rules_transforms()
    {
        const string yaml = """
            routing-rules:
              - name: "first"
                condition: { event-type: "video.*" }
                destinations:
                  - { topic: "shared-topic", priority: LOW, transform: [ { drop: [ quality ] } ] }
              - name: "second"
                condition: "*"
                destinations:
                  - { topic: "shared-topic", priority: HIGH }
                  - { topic: "other-topic" }
            """;
        var play = Sample.PlayStarted();

        var batch = Route(yaml, play);

        var shared = Assert.Single(batch.Topics["shared-topic"].Events);
        Assert.False(shared.Payload.Has("quality"));
        Assert.Equal(Priority.Low, batch.Topics["shared-topic"].Priority);
        Assert.Same(play, Assert.Single(batch.Topics["other-topic"].Events));
        Assert.Equal(2, batch.Deliveries);
    }

    [Fact]
    public void Unmatched_events_are_kept_as_unrouted_in_order()
    {
        const string yaml = """
            routing-rules:
              - name: "video-only"
                condition: { event-type: "video.*" }
                destinations:
                  - { topic: "video-events" }
            """;
        var health = Sample.HealthCheck();
        var pay = Sample.Payment();

        var batch = Route(yaml, health, Sample.PlayStarted(), pay);

        Assert.Equal([health, pay], batch.Unrouted);
        Assert.Equal(1, batch.Deliveries);
    }

    [Fact]
    public void Dynamic_topics_resolve_placeholders_per_event()
    {
        const string yaml = """
            routing-rules:
              - name: "by-category"
                condition: "*"
                destinations:
                  - { topic: "{category}-events" }
                  - { topic: "regional-{region}" }
                  - { topic: "t.{event_type}.v{version}", priority: LOW }
            """;
        var batch = Route(yaml, Sample.PlayStarted(region: "us-east-1"), Sample.Payment(region: null), Sample.HealthCheck(region: "EU_West"));

        Assert.Equal(
            [
                "billing-events", "regional-eu_west", "regional-unknown", "regional-us-east-1", "system-events",
                "t.billing.payment_processed.v1.0", "t.system.health_check.v1.0", "t.video.play.started.v1.0", "video-events",
            ],
            batch.Topics.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(Priority.Low, batch.Topics["t.video.play.started.v1.0"].Priority);
        Assert.Equal(9, batch.Deliveries);
    }

    [Fact]
    public void Resolved_dynamic_topics_are_sanitized_to_valid_names()
    {
        var destination = new RouteDestination("svc-{service}", Priority.Normal, []);
        var e = Sample.PlayStarted() with { Source = new EventSource("Playback Service/EU", null, null) };

        Assert.True(destination.IsDynamic);
        Assert.Equal("svc-playback-service-eu", destination.ResolveTopic(e));

        var longName = Sample.PlayStarted() with { Source = new EventSource(new string('s', 100)) };
        Assert.Equal(63, destination.ResolveTopic(longName).Length);
    }

    [Fact]
    public void Filter_transform_holds_an_event_back_from_one_destination_only()
    {
        const string yaml = """
            routing-rules:
              - name: "uhd"
                condition: { event-type: "video.play.started" }
                destinations:
                  - topic: "playback-4k-starts"
                    transform:
                      - filter: { payload.quality: "4K" }
                      - project: [ user_id, quality ]
                  - { topic: "all-starts" }
            """;
        var batch = Route(yaml, Sample.PlayStarted(quality: "4K"), Sample.PlayStarted(quality: "SD"));

        var uhd = Assert.Single(batch.Topics["playback-4k-starts"].Events);
        Assert.Equal("""{"user_id":"user-123","quality":"4K"}""", uhd.Payload.ToString());
        Assert.Equal(2, batch.Topics["all-starts"].Events.Count);
        Assert.Equal(1, batch.Filtered);
        Assert.Equal(3, batch.Deliveries);
        Assert.Empty(batch.Unrouted);
    }

    [Fact]
    public void Explain_lists_each_destination_with_its_output()
    {
        var engine = Engine(BriefYaml);
        var traces = engine.Explain(Sample.Payment(region: "us-west-2"), 5, Sample.Now);

        Assert.Equal(
            [("billing-events", "billing-events-us", Priority.Normal), ("all-events-archive", "archive-all-events", Priority.Low)],
            traces.Select(t => (t.Rule, t.Topic, t.Priority)));
        Assert.Equal("sha256:07f7fa094ff47bc2", traces[0].Output!.Payload.GetString("email"));
    }
    [Fact]
    public void Routing_into_a_reused_result_gives_what_a_fresh_one_gets_and_forgets_the_previous_batch()
    {
        var engine = Engine(BriefYaml);
        var reused = new RoutedBatch();
        engine.Route([Sample.PlayStarted(userId: "a"), Sample.Payment(region: "us-east-1"), Sample.HealthCheck()], 3, Sample.Now, reused);

        var second = new[] { Sample.PlayStarted(userId: "b"), Sample.PlayStarted(userId: "c") };
        var fresh = engine.Route(second, 3, Sample.Now);
        Assert.Same(reused, engine.Route(second, 3, Sample.Now, reused));

        Assert.Equal(fresh.Topics.Keys, reused.Topics.Keys);
        foreach (var (topic, output) in fresh.Topics)
        {
            Assert.Equal(output.Priority, reused.Topics[topic].Priority);
            Assert.Equal(output.Events, reused.Topics[topic].Events);
            Assert.Equal(output.Indexes, reused.Topics[topic].Indexes);
        }
        Assert.DoesNotContain("billing-events-us", reused.Topics.Keys);
        Assert.Equal(fresh.Deliveries, reused.Deliveries);
        Assert.Equal(fresh.Filtered, reused.Filtered);
        Assert.Equal(fresh.Unrouted, reused.Unrouted);
    }
}
