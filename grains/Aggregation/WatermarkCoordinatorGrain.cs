using Microsoft.Extensions.Options;

namespace Keystone.Aggregation;

/// <summary>
/// Combines the partitions' watermarks: the minimum over partitions that are not idle (Flink's rule for an operator
/// with several inputs). Operators report at most once a second; the combined value says which windows of
/// cross-partition keys (videos) are final. In memory: operators re-report within a second of reactivation.
/// </summary>
public sealed class WatermarkCoordinatorGrain(IOptions<AggregationOptions> options, TimeProvider time) : Grain, IWatermarkCoordinatorGrain
{
    private readonly WatermarkTracker _tracker = new(options.Value.OutOfOrderness, options.Value.IdleTimeout);

    public Task<DateTimeOffset?> Report(int partition, DateTimeOffset? maxEventTime)
    {
        var now = time.GetUtcNow();
        if (maxEventTime is { } max) _tracker.Observe(partition, max, now);
        else _tracker.Touch(partition, now);
        return Task.FromResult(_tracker.Current(now));
    }

    public Task<DateTimeOffset?> GetWatermark() => Task.FromResult(_tracker.Current(time.GetUtcNow()));
}
