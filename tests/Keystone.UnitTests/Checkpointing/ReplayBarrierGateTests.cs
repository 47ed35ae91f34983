using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class ReplayBarrierGateTests
{
    [Fact]
    public void Without_a_replay_every_barrier_waits_to_be_covered_in_order()
    {
        var gate = new ReplayBarrierGate();
        gate.Arrived([1, 2]);
        gate.Arrived([3]);
        Assert.Equal([1, 2, 3], gate.Waiting);
        gate.Acknowledged(2);
        Assert.Equal([3], gate.Waiting);
    }

    [Fact]
    public void Barriers_that_went_out_before_a_replay_are_never_acknowledged()
    {
        var gate = new ReplayBarrierGate();
        gate.Arrived([4, 5]);
        gate.ReplayAsked();
        Assert.Empty(gate.Waiting);

        // While the router replays, and afterwards for what it had numbered before the replay: dropped.
        gate.Arrived([6]);
        gate.ReplaySent(lastBarrierBefore: 7);
        gate.Arrived([7]);
        Assert.Empty(gate.Waiting);

        // The first barrier behind the replayed events covers them.
        gate.Arrived([8]);
        Assert.Equal([8], gate.Waiting);
    }

    [Fact]
    public void A_checkpoint_that_a_replay_overtook_covers_nothing()
    {
        var gate = new ReplayBarrierGate();
        gate.Arrived([1]);
        var covering = gate.Waiting.ToList();
        var replays = gate.Replays;

        gate.ReplayAsked();
        gate.ReplaySent(lastBarrierBefore: 1);

        // What the operator checks before acknowledging what its checkpoint set out to cover.
        Assert.NotEqual(replays, gate.Replays);
        Assert.Equal([1], covering);
        Assert.Empty(gate.Waiting);
    }

    [Fact]
    public void A_failed_replay_lets_barriers_through_again_until_it_is_asked_again()
    {
        var gate = new ReplayBarrierGate();
        gate.ReplayAsked();
        gate.ReplayFailed();
        Assert.False(gate.Replaying);
        gate.Arrived([2]);
        Assert.Equal([2], gate.Waiting);
    }

    [Fact]
    public void A_new_router_activation_that_numbered_nothing_yet_drops_nothing_after_the_replay()
    {
        // The router died with its silo: its successor has sent no barrier, so the replay follows none of its own.
        var gate = new ReplayBarrierGate();
        gate.Arrived([9]);
        gate.ReplayAsked();
        gate.ReplaySent(lastBarrierBefore: 0);
        gate.Arrived([10]);
        Assert.Equal([10], gate.Waiting);
    }
}
