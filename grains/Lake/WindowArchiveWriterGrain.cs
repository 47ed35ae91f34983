using Keystone.Archive;
using Keystone.Events;
using Keystone.Ingest;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Lake;

/// <summary>
/// Puts the window results (<c>user-activity-stats</c>, written by the activity operators straight to their topic, so
/// not through the router and the archive topic) into the raw archive, next to the partition's events:
/// <c>archive/yyyy/MM/dd/HH/p{partition}-w0000.jsonl.gz</c>, by the hour of emission, one gzip member per delivery.
/// Compaction then gives them their Parquet table (<c>activity_windows</c>). At-least-once like the archive: a repeat
/// carries the same deterministic event id and compaction keeps one. Window results are a few per user and window,
/// so one part per hour stays far below an append blob's 50,000 blocks.
/// </summary>
[ImplicitStreamSubscription(StatsTopic)]
public sealed class WindowArchiveWriterGrain(ArchiveStore store, Microsoft.Extensions.Options.IOptions<ArchiveOptions> options, ILogger<WindowArchiveWriterGrain> logger)
    : Grain, IGrainWithStringKey, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    /// <summary>The aggregations' default stats topic (<c>Keystone:Aggregation:StatsTopic</c>); another name is not archived.</summary>
    public const string StatsTopic = "user-activity-stats";

    private int _partition;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        return Task.CompletedTask;
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public async Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        if (!options.Value.Enabled) return;
        var byHour = items.Where(i => !i.Item.IsBarrier).SelectMany(i => i.Item.Events).GroupBy(e => ArchiveStore.HourOf(e.Timestamp));
        foreach (var hour in byHour)
            await store.AppendAsync(ArchiveStore.HourPrefix(hour.Key) + $"p{_partition}-w0000.jsonl.gz", [.. hour]);
    }

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on the window-results archive of partition {Partition}", _partition);
        return Task.CompletedTask;
    }
}
