using Keystone.Routing;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Routing;

public class OperatorInputsTests
{
    private static RuleSet Parse(string yaml) => RuleSetParser.Parse(yaml, "t", TransformSettings.Default());

    [Fact]
    public void The_shipped_rules_feed_every_operator()
    {
        var path = RepoFiles.PathOf("silo/routing-rules.yaml");
        Assert.Empty(OperatorInputs.Unfed(RuleSetParser.Parse(File.ReadAllText(path), path, TransformSettings.Default()), OperatorInputs.All(archiveEnabled: true)));
    }

    [Fact]
    public void A_rule_set_without_an_operators_topic_names_the_topic_and_the_operator()
    {
        var rules = Parse("""
            routing-rules:
              - name: only-graph
                condition: "*"
                destinations: [ { topic: graph-updates }, { topic: ads-campaign }, { topic: archive-all-events } ]
            """);
        var problem = Assert.Single(OperatorInputs.Unfed(rules, OperatorInputs.All(archiveEnabled: true)));
        Assert.Equal("no enabled rule routes to topic 'activity-aggregation', the input of the activity window operator (per-user, per-video and per-profile aggregations): it would receive no events", problem);
    }

    [Fact]
    public void Disabled_rules_do_not_count_disabled_operators_are_not_asked_for_and_templates_may_reach_a_topic()
    {
        var rules = Parse("""
            routing-rules:
              - name: off
                enabled: false
                condition: "*"
                destinations: [ { topic: activity-aggregation } ]
              - name: templated
                condition: "*"
                destinations: [ { topic: "{category}-campaign" }, { topic: "graphs-{service}" } ]
            """);
        var unfed = OperatorInputs.Unfed(rules, OperatorInputs.All(archiveEnabled: false));
        Assert.Equal(2, unfed.Count);
        Assert.Contains("'activity-aggregation'", unfed[0], StringComparison.Ordinal);
        Assert.Contains("'graph-updates'", unfed[1], StringComparison.Ordinal);
        Assert.DoesNotContain(unfed, u => u.Contains("ads-campaign", StringComparison.Ordinal) || u.Contains("archive", StringComparison.Ordinal));
    }
}
