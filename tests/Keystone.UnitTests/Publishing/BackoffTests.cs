using Keystone.Client.Publishing;

namespace Keystone.UnitTests.Publishing;

public class BackoffTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void Nominal_schedule_doubles_from_the_base_and_stops_at_the_cap()
    {
        var backoff = new Backoff(Second, TimeSpan.FromSeconds(10), jitter: 0);

        Assert.Equal(
            [1, 2, 4, 8, 10, 10, 10],
            Enumerable.Range(1, 7).Select(a => backoff.Nominal(a).TotalSeconds));
    }

    [Fact]
    public void Very_late_attempts_stay_at_the_cap()
    {
        var backoff = new Backoff(Second, TimeSpan.FromSeconds(30), jitter: 0);
        Assert.Equal(TimeSpan.FromSeconds(30), backoff.Nominal(1000));
        Assert.Equal(TimeSpan.FromSeconds(30), backoff.Delay(int.MaxValue));
    }

    [Fact]
    public void Attempt_numbers_start_at_one()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Backoff(Second, Second, 0).Nominal(0));
    }

    [Fact]
    public void Zero_jitter_delays_are_exactly_nominal()
    {
        var backoff = new Backoff(Second, TimeSpan.FromSeconds(30), jitter: 0, new Random(1));
        Assert.Equal(
            [Second, 2 * Second, 4 * Second, 8 * Second],
            Enumerable.Range(1, 4).Select(backoff.Delay));
    }

    [Fact]
    public void Jittered_delays_stay_within_the_spread_and_actually_vary()
    {
        var backoff = new Backoff(Second, TimeSpan.FromSeconds(30), jitter: 0.2, new Random(12345));
        for (var attempt = 1; attempt <= 4; attempt++)
        {
            var nominal = backoff.Nominal(attempt);
            var delays = Enumerable.Range(0, 500).Select(_ => backoff.Delay(attempt)).ToList();
            Assert.All(delays, d => Assert.InRange(d, nominal * 0.8, nominal * 1.2));
            Assert.True(delays.Distinct().Count() > 400);
            // Both sides of the nominal value are used.
            Assert.Contains(delays, d => d < nominal * 0.9);
            Assert.Contains(delays, d => d > nominal * 1.1);
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_delays()
    {
        var a = new Backoff(Second, TimeSpan.FromSeconds(30), 0.5, new Random(7));
        var b = new Backoff(Second, TimeSpan.FromSeconds(30), 0.5, new Random(7));
        Assert.Equal(Enumerable.Range(1, 5).Select(a.Delay).ToList(), Enumerable.Range(1, 5).Select(b.Delay).ToList());
    }

    [Fact]
    public void From_options_uses_the_publisher_settings()
    {
        var options = new PublisherOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(250), MaxRetryDelay = Second, RetryJitter = 0 };
        var backoff = Backoff.From(options);
        Assert.Equal(
            [250, 500, 1000, 1000],
            Enumerable.Range(1, 4).Select(a => backoff.Delay(a).TotalMilliseconds));
    }
}
