using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Schemas;
using Keystone.Silo.Hosting;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Silo;

public class PipelineWarmUpTests
{
    [Fact]
    public void The_start_up_warm_up_validates_and_routes_generated_events_of_every_kind_with_the_shipped_rules()
    {
        // A warm-up whose events were rejected, or routed nowhere, would compile the error path instead of the real one.
        var path = RepoFiles.PathOf("silo/routing-rules.yaml");
        var rules = new RoutingRulesProvider(new RoutingEngine(RuleSetParser.Parse(File.ReadAllText(path), path, TransformSettings.Default(SchemaRegistry.Embedded))));

        var outcome = PipelineWarmUp.Run(new SchemaRegistryProvider(SchemaRegistry.Embedded), rules, TimeProvider.System);

        Assert.Equal(0, outcome.Rejected);
        Assert.True(outcome.Validated >= 400, $"{outcome.Validated} events validated");
        Assert.True(outcome.Deliveries > outcome.Validated * 2, $"{outcome.Deliveries} deliveries for {outcome.Validated} events");
    }
}
