using Keystone.Routing;

namespace Keystone.UnitTests.Routing;

public class RulesHistoryTests
{
    private static readonly DateTimeOffset T0 = Support.Sample.Now;

    private static RuleSet Parse(string topic) => RuleSetParser.Parse(
        $"routing-rules:\n  - name: r\n    condition: \"*\"\n    destinations: [ {{ topic: topic-{topic} }} ]\n", "test", TransformSettings.Default());

    [Fact]
    public void Versions_count_up_and_the_newest_is_current()
    {
        var history = new RulesHistory();
        Assert.Null(history.Current);
        var first = history.Add("a", Parse("a"), T0, "PUT");
        var second = history.Add("b", Parse("b"), T0.AddMinutes(1), "PUT");
        Assert.Equal((1, 2), (first.Version, second.Version));
        Assert.Same(second, history.Current);
        Assert.Equal("a", history.Find(1)!.Text);
        Assert.Null(history.Find(7));
        Assert.Equal(Parse("b").Hash, history.Current!.Hash);
    }

    [Fact]
    public void Only_the_newest_versions_are_kept_and_numbering_goes_on()
    {
        var history = new RulesHistory();
        for (var i = 0; i < RulesHistory.Kept + 5; i++) history.Add($"t{i}", Parse($"t{i}"), T0, "PUT");
        Assert.Equal(RulesHistory.Kept, history.Versions.Count);
        Assert.Null(history.Find(5));
        Assert.Equal(6, history.Versions[0].Version);
        Assert.Equal(RulesHistory.Kept + 5, history.Current!.Version);
    }
}

public class RuleSetParserHostileInputTests
{
    [Theory]
    [InlineData(10_000)]
    [InlineData(65)]
    public void Deep_nesting_is_refused_before_the_yaml_loader_recurses(int depth)
    {
        var e = Assert.Throws<RoutingRulesException>(() => RuleSetParser.Parse(new string('[', depth) + new string(']', depth), "test", TransformSettings.Default()));
        Assert.Contains("nested more than 64 levels", e.Message);
    }

    [Fact]
    public void Brackets_inside_quotes_do_not_count_and_self_referencing_aliases_are_refused()
    {
        Assert.Equal(1, RuleSetParser.FlowDepth("a: \"[[[[\" b: '{{{{' c: [x]"));
        var e = Assert.Throws<RoutingRulesException>(() => RuleSetParser.Parse("a: &a [*a]", "test", TransformSettings.Default()));
        Assert.StartsWith("test", e.Message);
    }
}
