namespace Keystone.Client.Publishing;

/// <summary>Exponential backoff with jitter: base × 2^(attempt-1), capped, then spread by ±jitter.</summary>
public sealed class Backoff(TimeSpan baseDelay, TimeSpan maxDelay, double jitter, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;

    /// <summary>The nominal (un-jittered) delay before retry number <paramref name="attempt"/> (1-based).</summary>
    public TimeSpan Nominal(int attempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var factor = Math.Pow(2, Math.Min(attempt - 1, 30));
        var ticks = Math.Min(baseDelay.Ticks * factor, maxDelay.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    public TimeSpan Delay(int attempt)
    {
        var nominal = Nominal(attempt);
        if (jitter <= 0) return nominal;
        var spread = (_random.NextDouble() * 2 - 1) * jitter;
        return TimeSpan.FromTicks(Math.Max(0, (long)(nominal.Ticks * (1 + spread))));
    }

    public static Backoff From(PublisherOptions o, Random? random = null) => new(o.RetryBaseDelay, o.MaxRetryDelay, o.RetryJitter, random);
}
