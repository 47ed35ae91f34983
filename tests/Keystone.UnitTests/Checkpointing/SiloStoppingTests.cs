using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public class SiloStoppingTests
{
    [Fact]
    public async Task A_stop_refuses_new_writes_and_waits_for_those_in_flight()
    {
        var stopping = new SiloStopping();
        Assert.True(stopping.TryEnter());
        Assert.True(stopping.TryEnter());

        var drained = stopping.DrainAsync();
        Assert.True(stopping.IsStopping);
        Assert.False(stopping.TryEnter());
        Assert.False(drained.IsCompleted);
        stopping.Exit();
        Assert.False(drained.IsCompleted);
        stopping.Exit();
        await drained;
    }

    [Fact]
    public async Task A_stop_with_nothing_in_flight_is_drained_at_once()
    {
        var stopping = new SiloStopping();
        Assert.True(stopping.TryEnter());
        stopping.Exit();
        Assert.False(stopping.IsStopping);
        await stopping.DrainAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(stopping.TryEnter());
    }
}
