using Keystone.Silo.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Keystone.UnitTests.Silo;

/// <summary>The janitor that deletes dead letters and committed exports past their retention, on a fake clock.</summary>
public sealed class RetentionJanitorTests
{
    [Fact]
    public async Task It_purges_at_start_and_every_hour_with_the_retention_of_the_moment_and_survives_a_failed_purge()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 10, 0, 0, TimeSpan.Zero));
        var retention = TimeSpan.FromDays(7);
        var purges = new List<(DateTimeOffset At, DateTimeOffset Cutoff)>();
        var failNext = false;
        using var janitor = new RetentionJanitor("things", (cutoff, _) =>
        {
            lock (purges) purges.Add((time.GetUtcNow(), cutoff));
            if (failNext)
            {
                failNext = false;
                throw new InvalidOperationException("storage away");
            }
            return Task.FromResult(1);
        }, () => retention, time, NullLogger.Instance);

        int Count()
        {
            lock (purges) return purges.Count;
        }
        // The janitor registers its hourly wait after each purge: advance the clock in steps until the next one runs.
        async Task NextPurge(int count)
        {
            for (var i = 0; i < 10_000 && Count() < count; i++)
            {
                time.Advance(TimeSpan.FromMinutes(1));
                await Task.Delay(1);
            }
            Assert.Equal(count, Count());
        }

        await janitor.StartAsync(CancellationToken.None);
        for (var i = 0; i < 1_000 && Count() < 1; i++) await Task.Delay(5);
        Assert.Equal((time.GetUtcNow(), time.GetUtcNow() - retention), purges[0]);

        retention = TimeSpan.FromDays(2);
        failNext = true;
        await NextPurge(2);
        Assert.True(purges[1].At - purges[0].At >= RetentionJanitor.Period);
        Assert.Equal(purges[1].At - TimeSpan.FromDays(2), purges[1].Cutoff);

        // The failure is logged and the next hour purges again.
        await NextPurge(3);
        Assert.True(purges[2].At - purges[1].At >= RetentionJanitor.Period);
        Assert.Equal(purges[2].At - TimeSpan.FromDays(2), purges[2].Cutoff);

        await janitor.StopAsync(CancellationToken.None);
    }
}
