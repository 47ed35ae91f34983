using Keystone.Lake;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Asks the compactor grain, every <see cref="LakeOptions.CompactionInterval"/>, to compact the sealed hours of the last
/// <see cref="LakeOptions.Lookback"/>. Every silo asks; the single compactor activation takes the calls one after another,
/// and an hour already compacted is only a manifest read.
/// </summary>
internal sealed class LakeCompactionService(IGrainFactory grains, IOptions<LakeOptions> options, TimeProvider time, ILogger<LakeCompactionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!o.CompactionEnabled) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(o.CompactionInterval, time, stoppingToken);
                var now = time.GetUtcNow();
                var report = await grains.GetGrain<ILakeCompactorGrain>(0).Compact(now - o.Lookback, now);
                if (report.Compacted > 0 || report.RawSegmentsDeleted > 0)
                    logger.LogInformation("Lake compaction: {Compacted} hour-partitions compacted ({Rows} events), {Deleted} raw segments deleted",
                        report.Compacted, report.Rows, report.RawSegmentsDeleted);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Lake compaction failed; trying again in {Interval}", o.CompactionInterval);
            }
        }
    }
}
