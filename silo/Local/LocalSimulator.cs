using Keystone.Client.Publishing;
using Keystone.Client.Simulation;
using Keystone.Silo.Hosting;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Local;

/// <summary>
/// The local run's built-in traffic: once the silo is up it publishes the catalogue, then simulated sessions at
/// <c>Keystone:Local:SimulateRate</c> events/s through the same SDK producers use (over the silo's own grain factory).
/// </summary>
internal sealed class LocalSimulator(
    IGrainFactory grains,
    IOptions<LocalOptions> options,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggers) : BackgroundService
{
    private readonly ILogger _logger = loggers.CreateLogger<LocalSimulator>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled()))
        {
            try
            {
                await started.Task;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var publisherOptions = new PublisherOptions { Origin = "local-simulator", DeadLetterPath = Path.Combine(".local", "simulator-deadletter.jsonl") };
        await using var publisher = KeystonePublisher.Create(grains, publisherOptions, logger: loggers.CreateLogger<KeystonePublisher>());
        var simulator = new TrafficSimulator(new SimulationOptions { Users = 2_000, Videos = 500, ConcurrentSessions = 300, Seed = Environment.TickCount });
        foreach (var e in simulator.Catalogue(DateTimeOffset.UtcNow)) await publisher.PublishAsync(e, stoppingToken);
        // The catalogue is complete: send it now rather than after the publisher's linger, and have it accepted before
        // the sessions that refer to it begin.
        await publisher.FlushAsync(stoppingToken);

        _logger.LogInformation("Simulator publishing {Rate} events/s (set Keystone:Local:Simulate=false to stop it)", options.Value.SimulateRate);
        try
        {
            await SimulationRunner.RunAsync(simulator, publisher, options.Value.SimulateRate, duration: null, progress: p =>
            {
                if ((int)p.Elapsed.TotalSeconds % 30 == 0)
                    _logger.LogInformation("Simulator: {Generated} events, {Rate:0}/s, published {Published}, rejected {Rejected}, dead-lettered {Dead}",
                        p.Generated, p.RatePerSecond, p.Publisher.Published, p.Publisher.Rejected, p.Publisher.DeadLettered);
            }, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
