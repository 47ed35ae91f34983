using Keystone.Events;
using Keystone.Routing;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Routing;

public class RuleSetParserTests
{
    private static RoutingRulesException Fails(string yaml) =>
        Assert.Throws<RoutingRulesException>(() => RuleSetParser.Parse(yaml, "rules.yaml", TransformSettings.Default()));

    public record BadRules(string Case, string Yaml, int Line, string? Rule, string Problem)
    {
        public override string ToString() => Case;
    }

    public static TheoryData<BadRules> BadRuleSets =>
    [
        new("unknown key", """
            routing-rules:
              - name: "r1"
                condition: "*"
                colour: blue
                destinations:
                  - { topic: "t-one" }
            """, 4, "r1", "unknown key 'colour' (allowed: name, description, enabled, condition, destinations)"),
        new("unknown attribute", """
            routing-rules:
              - name: "r1"
                destinations:
                  - { topic: "t-one" }
                condition: { event-type: "video.*", colour: "red" }
            """, 5, "r1", "unknown attribute 'colour' in 'condition'"),
        new("bad glob", """
            routing-rules:
              - name: "globby"
                condition: { event-type: "video.[ab]" }
                destinations:
                  - { topic: "t-one" }
            """, 3, "globby", "'condition.event-type': 'video.[ab]' uses '[', which is not supported"),
        new("empty destinations", """
            routing-rules:
              - name: "nowhere"
                condition: "*"
                destinations: []
            """, 4, "nowhere", "'destinations' is empty; a rule must send its matches somewhere."),
        new("duplicate rule names", """
            routing-rules:
              - name: "twin"
                condition: "*"
                destinations:
                  - { topic: "t-one" }
              - name: "twin"
                condition: "*"
                destinations:
                  - { topic: "t-two" }
            """, 6, "twin", "duplicate rule name 'twin'."),
        new("duplicate topic in one rule", """
            routing-rules:
              - name: "double"
                condition: "*"
                destinations:
                  - { topic: "t-one" }
                  - { topic: "t-one", priority: LOW }
            """, 6, "double", "destinations[1]: topic 't-one' is listed twice in this rule."),
        new("unknown transform", """
            routing-rules:
              - name: "secret"
                condition: "*"
                destinations:
                  - topic: "t-one"
                    transform: [ encrypt-everything ]
            """, 6, "secret", "destinations[0].transform: unknown transform 'encrypt-everything' (known: mask-pii-fields, enrich, project, drop, filter)."),
        new("unknown priority", """
            routing-rules:
              - name: "urgent"
                condition: "*"
                destinations:
                  - { topic: "t-one", priority: URGENT }
            """, 5, "urgent", "destinations[0].priority: unknown priority 'URGENT' (use HIGH, NORMAL or LOW)."),
        new("invalid topic name", """
            routing-rules:
              - name: "spaces"
                condition: "*"
                destinations:
                  - { topic: "Billing Events" }
            """, 5, "spaces", "destinations[0].topic: 'Billing Events' is not a valid topic name"),
        new("reserved topic prefix", """
            routing-rules:
              - name: "sneaky"
                condition: "*"
                destinations:
                  - { topic: "keystone-fronting" }
            """, 5, "sneaky", "'keystone-fronting' is not a valid topic name (3-63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit; 'keystone-' is reserved)."),
        new("unknown placeholder", """
            routing-rules:
              - name: "dyn"
                condition: "*"
                destinations:
                  - { topic: "events-{colour}" }
            """, 5, "dyn", "destinations[0].topic: unknown placeholder '{colour}' (allowed: {event_type}, {category}, {region}, {service}, {device_type}, {version})."),
        new("unclosed placeholder", """
            routing-rules:
              - name: "dyn"
                condition: "*"
                destinations:
                  - { topic: "events-{region" }
            """, 5, "dyn", "unclosed '{' in topic 'events-{region'."),
        new("missing condition", """
            routing-rules:
              - name: "r1"
                destinations:
                  - { topic: "t-one" }
            """, 2, "r1", "has no 'condition' (use \"*\" to match every event)."),
        new("missing destinations", """
            routing-rules:
              - name: "r1"
                condition: "*"
            """, 2, "r1", "has no 'destinations'."),
        new("scalar condition other than star", """
            routing-rules:
              - name: "r1"
                condition: "x"
                destinations:
                  - { topic: "t-one" }
            """, 3, "r1", "'condition' must be \"*\" or a mapping such as { event-type: \"video.play.*\" }, not 'x'."),
        new("empty condition mapping", """
            routing-rules:
              - name: "r1"
                condition: {}
                destinations:
                  - { topic: "t-one" }
            """, 3, "r1", "'condition' is empty; use \"*\" to match every event."),
        new("enabled not a boolean", """
            routing-rules:
              - name: "r1"
                enabled: maybe
                condition: "*"
                destinations:
                  - { topic: "t-one" }
            """, 3, "r1", "'enabled' must be true or false, not 'maybe'."),
        new("unknown destination key", """
            routing-rules:
              - name: "r1"
                condition: "*"
                destinations:
                  - { topic: "t-one", retention: 7d }
            """, 5, "r1", "destinations[0]: unknown key 'retention' (allowed: topic, priority, transform)."),
        new("unknown mask mode", """
            routing-rules:
              - name: "r1"
                condition: "*"
                destinations:
                  - topic: "t-one"
                    transform:
                      - mask-pii-fields: { mode: scramble }
            """, 7, "r1", "unknown mode 'scramble' (use hash or mask)."),
        new("unknown top-level key", """
            routing-rules:
              - name: "r1"
                condition: "*"
                destinations:
                  - { topic: "t-one" }
            routing-rulez: []
            """, 6, null, "unknown top-level key 'routing-rulez' (expected 'routing-rules')."),
        new("empty rule list", """
            routing-rules: []
            """, 1, null, "'routing-rules' is empty; at least one rule is required."),
    ];

    [Theory]
    [MemberData(nameof(BadRuleSets))]
    public void Bad_rules_name_the_line_the_rule_and_the_problem(BadRules bad)
    {
        var e = Fails(bad.Yaml);

        Assert.Equal(bad.Line, e.Line);
        Assert.Equal(bad.Rule, e.Rule);
        Assert.StartsWith($"rules.yaml line {bad.Line}, column ", e.Message);
        if (bad.Rule is not null) Assert.Contains($"rule '{bad.Rule}': ", e.Message);
        Assert.Contains(bad.Problem, e.Message);
    }

    [Fact]
    public void Broken_yaml_syntax_is_reported_with_its_position()
    {
        var e = Fails("""
            routing-rules:
              - name: "r1
                condition: "*"
            """);

        Assert.True(e.Line >= 2, $"line {e.Line}");
        Assert.StartsWith($"rules.yaml line {e.Line}, column {e.Column}: not valid YAML: ", e.Message);
    }

    [Fact]
    public void A_mapping_value_in_the_wrong_place_is_not_yaml()
    {
        var e = Fails("""
            routing-rules:
              - name: "r1"
                condition: a: b
            """);

        Assert.Equal(3, e.Line);
        Assert.StartsWith("rules.yaml line 3, column ", e.Message);
        Assert.Contains("not valid YAML: ", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \n\t\n")]
    public void Empty_text_is_refused(string text)
    {
        var e = Fails(text);
        Assert.Equal("rules.yaml: the rule set is empty; expected a top-level 'routing-rules:' list.", e.Message);
    }

    [Fact]
    public void A_document_that_is_not_a_mapping_is_refused()
    {
        var e = Fails("- just\n- a list\n");
        Assert.Equal("rules.yaml line 1, column 1: expected a mapping with a 'routing-rules:' list at the top level.", e.Message);
    }

    [Fact]
    public void Underscore_attribute_spellings_are_accepted()
    {
        var rules = RuleSetParser.Parse("""
            routing-rules:
              - name: "r1"
                condition: { event_type: "video.*", device_type: "smart_tv", user_segment: "*" }
                destinations:
                  - { topic: "t-one", priority: high }
            """, "t", TransformSettings.Default());

        Assert.Equal(["event-type", "device-type", "user-segment"], rules.Rules[0].Condition.Tests.Select(t => t.Attribute));
        Assert.Equal(Priority.High, rules.Rules[0].Destinations[0].Priority);
    }

    [Fact]
    public void Json_text_is_accepted_too()
    {
        var rules = RuleSetParser.Parse("""
            { "routing-rules": [ { "name": "j", "condition": { "event-type": "ad.*" }, "destinations": [ { "topic": "ads-events", "priority": "HIGH" } ] } ] }
            """, "rules.json", TransformSettings.Default());

        var rule = Assert.Single(rules.Rules);
        Assert.Equal("j", rule.Name);
        Assert.Equal("ads-events", rule.Destinations[0].Topic);
    }

    [Fact]
    public void Transforms_are_built_with_their_options()
    {
        var rules = RuleSetParser.Parse("""
            routing-rules:
              - name: "r1"
                condition: "*"
                destinations:
                  - topic: "t-one"
                    transforms:
                      - mask-pii-fields: { fields: [ email ], mode: mask }
                      - enrich: { team: "growth" }
                      - project: [ user_id, email ]
                      - drop: [ user_id ]
                      - filter: { region: "us-*" }
            """, "t", TransformSettings.Default());

        var transforms = rules.Rules[0].Destinations[0].Transforms;
        Assert.Equal(["mask-pii-fields", "enrich", "project", "drop", "filter"], transforms.Select(t => t.Name));

        var e = Sample.Payment(region: "us-east-1");
        var context = new RouteContext("r1", "t-one", 2, Sample.Now);
        var output = transforms.Aggregate<IEventTransform, KeystoneEvent?>(e, (current, t) => current is null ? null : t.Apply(current, context));

        Assert.NotNull(output);
        Assert.Equal("""{"email":"***"}""", output.Payload.ToString());
        Assert.Equal("growth", output.Metadata.Get("team"));
        Assert.Null(transforms.Aggregate<IEventTransform, KeystoneEvent?>(Sample.Payment(region: "eu-west-1"), (current, t) => current is null ? null : t.Apply(current, context)));
    }

    [Fact]
    public void The_shipped_rules_file_parses_and_routes_every_category()
    {
        var path = RepoFiles.PathOf("silo/routing-rules.yaml");
        var rules = RuleSetParser.Parse(File.ReadAllText(path), path, TransformSettings.Default());

        Assert.Equal(
            [
                "playback-to-analytics", "billing-events", "all-events-archive", "billing-events-international", "ads", "ads-campaigns",
                "identity", "catalogue", "system-monitoring", "critical-errors", "activity-aggregation", "real-time-graph", "4k-quality-sample",
            ],
            rules.Rules.Select(r => r.Name));

        var engine = new RoutingEngine(rules);
        var critical = Sample.Of("system.error_logged", Payload.Create(("component", "api"), ("error_code", "E1"), ("severity", "critical")));
        var batch = engine.Route([critical], 0, Sample.Now);
        Assert.Equal(["archive-all-events", "ops-alerts", "system-monitoring"], batch.Topics.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("critical-errors", Assert.Single(batch.Topics["ops-alerts"].Events).Metadata.Get("routed_by"));

        var eu = engine.Route([Sample.Payment(region: "eu-west-1")], 0, Sample.Now);
        Assert.Equal(["archive-all-events", "billing-events-intl"], eu.Topics.Keys.Order(StringComparer.Ordinal));

        var play = engine.Route([Sample.PlayStarted(quality: "4K")], 0, Sample.Now);
        Assert.Equal(
            ["activity-aggregation", "analytics-playback-events", "archive-all-events", "graph-updates", "ml-recommendation-input", "playback-4k-starts"],
            play.Topics.Keys.Order(StringComparer.Ordinal));

        // Ad events reach the campaign operators at HIGH priority, besides the enriched ads topic.
        var click = engine.Route([Sample.Of("ad.click", Payload.Create(("campaign_id", "c"), ("user_id", "u")))], 0, Sample.Now);
        Assert.Equal(["ads-campaign", "ads-events", "archive-all-events"], click.Topics.Keys.Order(StringComparer.Ordinal));
    }
}
