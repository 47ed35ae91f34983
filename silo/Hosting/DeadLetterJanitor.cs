using Keystone.Operations;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>Deletes dead letters older than <see cref="DeadLetterOptions.Retention"/>, once at start and then hourly.</summary>
internal sealed class DeadLetterJanitor(DeadLetterStore store, IOptions<DeadLetterOptions> options, TimeProvider time, ILogger<DeadLetterJanitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var deleted = await store.PurgeAsync(time.GetUtcNow() - options.Value.Retention);
                if (deleted > 0) logger.LogInformation("Deleted {Count} dead letters older than {Retention}", deleted, options.Value.Retention);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "Dead-letter clean-up failed; trying again later");
            }
            try
            {
                await Task.Delay(TimeSpan.FromHours(1), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }
}
