namespace Keystone.Silo.Hosting;

/// <summary>Deletes what is older than a retention (dead letters, committed exports), once at start and then hourly.
/// Every silo runs one per store; deleting what another silo deleted already costs a request, nothing more.</summary>
internal sealed class RetentionJanitor(string what, Func<DateTimeOffset, CancellationToken, Task<int>> purge, Func<TimeSpan> retention, TimeProvider time, ILogger logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var keep = retention();
                var deleted = await purge(time.GetUtcNow() - keep, stoppingToken);
                if (deleted > 0) logger.LogInformation("Deleted {Count} {What} older than {Retention}", deleted, what, keep);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogDebug(e, "Clean-up of {What} failed; trying again later", what);
            }
            try
            {
                await Task.Delay(Period, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }
}
