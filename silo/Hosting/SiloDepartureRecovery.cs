using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Checkpointing;
using Keystone.Graph;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Watches the cluster membership and, when a silo leaves (declared dead after a crash, or stopped), tells every
/// entity operator of every partition to replay from its last checkpoint (<see cref="IEntityOperatorGrain.SiloLeft"/>).
/// Without it an entity grain that lost its memory with the silo would be noticed only when its operator next
/// delivered to it or reached its next checkpoint (minutes, for the graph). Which silo acts is
/// <see cref="SiloDepartures{TSilo}"/>'s choice: one per departure.
/// </summary>
internal sealed class SiloDepartureRecovery(
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    IGrainFactory grains,
    IOptions<IngestOptions> ingest,
    TimeProvider time,
    ILogger<SiloDepartureRecovery> logger) : BackgroundService
{
    private const int Attempts = 5;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new SiloDepartures<SiloAddress>(silo.SiloAddress).WatchAsync(
            membership.MembershipUpdates.Select(snapshot => snapshot.Members.Values.Select(m => (m.SiloAddress, m.Status))),
            left => Recover(left, stoppingToken),
            stoppingToken);

    private async Task Recover(IReadOnlyList<SiloAddress> left, CancellationToken stoppingToken)
    {
        var names = string.Join(", ", left.Select(s => s.ToParsableString()));
        logger.LogWarning("Silo {Silos} left the cluster; every entity operator replays from its last checkpoint", names);
        await Task.WhenAll(Enumerable.Range(0, ingest.Value.Partitions).SelectMany(p =>
        {
            var key = StreamNames.PartitionKey(p);
            return new[]
            {
                Tell($"activity operator {key}", () => grains.GetGrain<IActivityOperatorGrain>(key).SiloLeft(names), stoppingToken),
                Tell($"graph operator {key}", () => grains.GetGrain<IGraphOperatorGrain>(key).SiloLeft(names), stoppingToken),
                Tell($"ads operator {key}", () => grains.GetGrain<IAdsOperatorGrain>(key).SiloLeft(names), stoppingToken),
            };
        }));
    }

    // Right after a departure, a call can land on the departed silo's stale directory entries; Orleans resolves them
    // within seconds.
    private async Task Tell(string what, Func<Task> call, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await call();
                return;
            }
            catch (Exception e) when (attempt < Attempts && !stoppingToken.IsCancellationRequested)
            {
                logger.LogInformation("Telling the {Operator} that a silo left failed ({Error}); trying again", what, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(attempt), time, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Not lost: the operator still notices lost entities at its next delivery to them or its next checkpoint.
                logger.LogWarning(e, "The {Operator} could not be told that a silo left; it will notice at its next checkpoint", what);
                return;
            }
        }
    }
}
