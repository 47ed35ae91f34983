using Keystone.Checkpointing;
using Orleans.Runtime;

namespace Keystone.UnitTests.Checkpointing;

public sealed class SiloDeparturesTests
{
    private static (int, SiloStatus)[] View(params (int Silo, SiloStatus Status)[] members) => members;

    [Fact]
    public void The_lowest_active_silo_acts_once_per_departure()
    {
        var lowest = new SiloDepartures<int>(1);
        var other = new SiloDepartures<int>(2);
        var start = View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Active));
        Assert.Empty(lowest.Observe(start));
        Assert.Empty(other.Observe(start));

        var dead = View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Dead));
        Assert.Equal([3], lowest.Observe(dead));
        Assert.Empty(other.Observe(dead));

        // The same view again (membership versions move for other reasons): nothing new.
        Assert.Empty(lowest.Observe(dead));
    }

    [Fact]
    public void A_stop_is_a_departure_too_once_the_silo_is_dead_not_while_it_shuts_down()
    {
        var silo = new SiloDepartures<int>(1);
        silo.Observe(View((1, SiloStatus.Active), (2, SiloStatus.Active)));
        Assert.Empty(silo.Observe(View((1, SiloStatus.Active), (2, SiloStatus.ShuttingDown))));
        Assert.Equal([2], silo.Observe(View((1, SiloStatus.Active), (2, SiloStatus.Dead))));
    }

    [Fact]
    public void Silos_gone_before_this_silo_started_are_history()
    {
        // A restarted silo finds its own earlier incarnation dead in the table: its grains recover when they activate.
        var silo = new SiloDepartures<int>(5);
        Assert.Empty(silo.Observe(View((4, SiloStatus.Dead), (5, SiloStatus.Joining))));
        Assert.Empty(silo.Observe(View((4, SiloStatus.Dead), (5, SiloStatus.Active))));
    }

    [Fact]
    public void When_the_acting_silo_dies_the_next_lowest_acts_for_it()
    {
        var second = new SiloDepartures<int>(2);
        second.Observe(View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Active)));
        Assert.Empty(second.Observe(View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Dead))));
        Assert.Equal([1], second.Observe(View((1, SiloStatus.Dead), (2, SiloStatus.Active), (3, SiloStatus.Dead))));
    }

    [Fact]
    public void A_silo_that_is_not_active_itself_never_acts()
    {
        var leaving = new SiloDepartures<int>(1);
        leaving.Observe(View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Active)));
        Assert.Empty(leaving.Observe(View((1, SiloStatus.ShuttingDown), (2, SiloStatus.Active), (3, SiloStatus.Dead))));
    }

    [Fact]
    public async Task A_second_departure_is_acted_on_while_the_first_recovery_still_waits()
    {
        // The graceful stop of silo 3, then the kill of silo 2 while the operators are still being told about 3 (their
        // calls waiting on grains of the killed silo): silo 2's recovery must start without waiting for 3's.
        var views = System.Threading.Channels.Channel.CreateUnbounded<IEnumerable<(int, SiloStatus)>>();
        var firstRecovery = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var recovered = new List<int>();
        Task Recover(IReadOnlyList<int> left)
        {
            lock (recovered) recovered.AddRange(left);
            if (left.Contains(3)) return firstRecovery.Task;
            secondStarted.TrySetResult();
            return Task.CompletedTask;
        }
        using var stop = new CancellationTokenSource();
        var watch = new SiloDepartures<int>(1).WatchAsync(views.Reader.ReadAllAsync(), Recover, stop.Token);

        views.Writer.TryWrite(View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Active)));
        views.Writer.TryWrite(View((1, SiloStatus.Active), (2, SiloStatus.Active), (3, SiloStatus.Dead)));
        views.Writer.TryWrite(View((1, SiloStatus.Active), (2, SiloStatus.Dead), (3, SiloStatus.Dead)));
        await secondStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([3, 2], recovered);
        Assert.False(watch.IsCompleted);

        // The watch ends with its views, once the recoveries it started have ended.
        views.Writer.Complete();
        Assert.False(watch.IsCompleted);
        firstRecovery.SetResult();
        await watch.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_stop_ends_the_watch_even_with_a_recovery_cancelled_under_way()
    {
        var views = System.Threading.Channels.Channel.CreateUnbounded<IEnumerable<(int, SiloStatus)>>();
        using var stop = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task Recover(IReadOnlyList<int> left)
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        var watch = new SiloDepartures<int>(1).WatchAsync(views.Reader.ReadAllAsync(), Recover, stop.Token);
        views.Writer.TryWrite(View((1, SiloStatus.Active), (2, SiloStatus.Active)));
        views.Writer.TryWrite(View((1, SiloStatus.Active), (2, SiloStatus.Dead)));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await stop.CancelAsync();
        await watch.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(watch.IsCompletedSuccessfully);
    }
}
