using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class RouterReplaysTests
{
    [Fact]
    public void Consumers_that_were_ready_before_a_replay_started_share_it()
    {
        var replays = new RouterReplays();
        // The activity, graph and ads operators of a partition forget their segments and read the count together.
        var seen = replays.Started;
        Assert.True(replays.Begin(seen, lastBarrier: 7));
        Assert.False(replays.Begin(seen, lastBarrier: 7));
        Assert.False(replays.Begin(seen, lastBarrier: 8));
        Assert.Equal(1, replays.Started);
        // All three are told the barrier the one replay followed.
        Assert.Equal(7, replays.BarrierBefore);
    }

    [Fact]
    public void A_consumer_that_became_ready_after_a_replay_started_gets_its_own()
    {
        var replays = new RouterReplays();
        Assert.True(replays.Begin(replays.Started, lastBarrier: 3));
        // Forgot its segments while that replay was running: part of it may have been dropped before.
        var seen = replays.Started;
        Assert.True(replays.Begin(seen, lastBarrier: 5));
        Assert.Equal(2, replays.Started);
        Assert.Equal(5, replays.BarrierBefore);
    }
}
