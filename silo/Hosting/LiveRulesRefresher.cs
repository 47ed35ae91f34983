using Keystone.Pipeline;
using Keystone.Routing;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Keeps this silo's routers on the live rule set: polls the rules grain and swaps the rules in force when its
/// version changes (routers read them once per batch). Until a rule set is first applied, the rule file stays in force.
/// </summary>
internal sealed class LiveRulesRefresher(
    IGrainFactory grains,
    RoutingRulesProvider rules,
    SchemaRegistryProvider schemas,
    IOptions<RoutingOptions> options,
    ILogger<LiveRulesRefresher> logger) : BackgroundService
{
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
                logger.LogDebug(e, "Could not read the live routing rules");
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

    public async Task RefreshAsync()
    {
        var live = await grains.GetGrain<IRoutingRulesGrain>(0).GetCurrent();
        if (live is null || live.Info.Hash == rules.Current.Rules.Hash) return;
        var parsed = RuleSetParser.Parse(live.Text, $"live rules version {live.Info.Version}", RoutingRulesGrain.Settings(options.Value, schemas));
        rules.Replace(new RoutingEngine(parsed));
        logger.LogInformation("Routing rules version {Version} ({Hash}) now in force on this silo", live.Info.Version, live.Info.Hash);
    }
}
