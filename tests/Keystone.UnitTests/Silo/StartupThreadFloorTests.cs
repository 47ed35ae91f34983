using Keystone.Silo.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Keystone.UnitTests.Silo;

/// <summary>The thread pool's raised minimum while a silo starts, on a fake pool and a fake clock.</summary>
public sealed class StartupThreadFloorTests
{
    private sealed class FakePool(int worker, int io) : IThreadPoolMinimum
    {
        public (int Worker, int Io) Current { get; private set; } = (worker, io);
        public List<(int Worker, int Io)> Sets { get; } = [];

        public (int Worker, int Io) Get() => Current;

        public void Set(int worker, int io)
        {
            Current = (worker, io);
            Sets.Add(Current);
        }
    }

    private static StartupThreadFloor Floor(FakePool pool, TimeProvider time, int threads = 16, double seconds = 30) =>
        new(Options.Create(new RuntimeOptions { StartupMinThreads = threads, StartupPeriod = TimeSpan.FromSeconds(seconds) }), pool, time, NullLogger<StartupThreadFloor>.Instance);

    [Fact]
    public async Task The_minimum_is_raised_at_start_and_put_back_after_the_period()
    {
        var time = new FakeTimeProvider();
        var pool = new FakePool(2, 2);
        using var floor = Floor(pool, time);

        await floor.StartAsync(CancellationToken.None);
        Assert.Equal((16, 2), pool.Current);

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal((16, 2), pool.Current);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal((2, 2), pool.Current);
        Assert.Equal([(16, 2), (2, 2)], pool.Sets);
    }

    [Theory]
    [InlineData(0, 30)]
    [InlineData(16, 0)]
    [InlineData(8, 30)]
    public async Task Nothing_changes_when_disabled_or_when_the_pool_already_has_as_many(int threads, double seconds)
    {
        var time = new FakeTimeProvider();
        var pool = new FakePool(8, 8);
        using var floor = Floor(pool, time, threads, seconds);

        await floor.StartAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Empty(pool.Sets);
    }

    [Fact]
    public async Task A_minimum_someone_else_set_meanwhile_is_left_alone()
    {
        var time = new FakeTimeProvider();
        var pool = new FakePool(2, 2);
        using var floor = Floor(pool, time);

        await floor.StartAsync(CancellationToken.None);
        pool.Set(64, 2);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal((64, 2), pool.Current);
    }

    [Theory]
    [InlineData(-1, 30, "Keystone:Runtime:StartupMinThreads must be between 0 and 1024 (got -1).")]
    [InlineData(2000, 30, "Keystone:Runtime:StartupMinThreads must be between 0 and 1024 (got 2000).")]
    [InlineData(16, -1, "Keystone:Runtime:StartupPeriod must not be negative (got -00:00:01).")]
    public void Bad_settings_are_named(int threads, double seconds, string problem) =>
        Assert.Equal([problem], new RuntimeOptions { StartupMinThreads = threads, StartupPeriod = TimeSpan.FromSeconds(seconds) }.Problems());
}
