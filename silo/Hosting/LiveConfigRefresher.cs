using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Schemas;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Keeps this silo on the live routing rules and schemas: polls the rules and schema-catalog grains and swaps what
/// is in force when they change (routers and ingest read it once per batch), so neither needs a restart. Until a
/// rule set is first applied, the rule file stays in force; added schema versions extend the shipped registry.
/// </summary>
internal sealed class LiveConfigRefresher(
    IGrainFactory grains,
    RoutingRulesProvider rules,
    SchemaRegistryProvider schemas,
    IOptions<RoutingOptions> options,
    ILogger<LiveConfigRefresher> logger) : BackgroundService
{
    private readonly SchemaRegistry _shipped = schemas.Current;
    private int _schemasApplied;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync();
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The silo may still be starting, or storage may be briefly unreachable: try again next period.
                logger.LogDebug(e, "Could not read the live routing rules or schemas");
            }
            try
            {
                await Task.Delay(options.Value.RefreshInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task RefreshAsync()
    {
        // Schemas first: mask-pii-fields reads the x-pii fields of the registry the rules are parsed with.
        var added = await grains.GetGrain<ISchemaCatalogGrain>(0).GetAdded();
        if (added.Count != _schemasApplied)
        {
            schemas.Replace(added.Aggregate(_shipped, (r, a) => r.With(SchemaLoader.Parse(a.EventType, a.Version, a.Json))));
            _schemasApplied = added.Count;
            logger.LogInformation("{Count} added schema versions now in force on this silo", added.Count);
        }

        var live = await grains.GetGrain<IRoutingRulesGrain>(0).GetCurrent();
        if (live is null || live.Info.Hash == rules.Current.Rules.Hash) return;
        var parsed = RuleSetParser.Parse(live.Text, $"live rules version {live.Info.Version}", RoutingRulesGrain.Settings(options.Value, schemas));
        rules.Replace(new RoutingEngine(parsed));
        logger.LogInformation("Routing rules version {Version} ({Hash}) now in force on this silo", live.Info.Version, live.Info.Hash);
    }
}
