using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class TouchedEntitiesTests
{
    private static readonly Guid A = Guid.NewGuid();
    private static readonly Guid B = Guid.NewGuid();
    private static readonly Guid C = Guid.NewGuid();

    [Fact]
    public void The_same_activation_answering_again_owes_nothing()
    {
        var touched = new TouchedEntities();
        Assert.False(touched.Touch("u:1", A));
        Assert.False(touched.Touch("u:1", A));
        Assert.Equal(1, touched.Count);
    }

    [Fact]
    public void Two_activations_answering_in_turns_within_a_period_owe_a_replay_at_each_change()
    {
        var touched = new TouchedEntities();
        Assert.False(touched.Touch("u:1", A));
        Assert.True(touched.Touch("u:1", B)); // A's events are gone with its memory
        Assert.False(touched.Touch("u:1", B)); // B is the one known now
        Assert.True(touched.Touch("u:1", A)); // and a turn back is another loss
        Assert.False(touched.Touch("u:2", B)); // other entities are not concerned
    }

    [Fact]
    public void A_new_activation_after_a_barrier_wrote_the_entity_has_lost_nothing()
    {
        var touched = new TouchedEntities();
        touched.Touch("u:1", A);
        var period = touched.Cut();
        Assert.Equal(0, touched.Count);
        Assert.Empty(period.Lost([("u:1", A)]));

        Assert.False(touched.Touch("u:1", B));
        Assert.Equal(1, touched.Count);
    }

    [Fact]
    public void While_a_replay_is_on_its_way_the_next_activation_to_answer_is_taken_as_the_one_that_has_it()
    {
        var touched = new TouchedEntities();
        touched.Touch("u:1", A);
        touched.Touch("u:2", A);
        touched.ReplayOnItsWay();

        Assert.False(touched.Touch("u:1", B));
        // Once it has answered, a change is a loss again.
        Assert.True(touched.Touch("u:1", C));
        Assert.Equal(2, touched.Count);
    }

    [Fact]
    public void A_write_answered_by_another_activation_than_the_one_that_applied_is_lost()
    {
        var touched = new TouchedEntities();
        touched.Touch("u:3", A);
        touched.ReplayOnItsWay();
        touched.Touch("u:1", A);
        touched.Touch("u:2", A);
        touched.Touch("u:4", A);
        var period = touched.Cut();
        Assert.Equal(["u:1", "u:2", "u:3", "u:4"], period.Keys.Order());

        var lost = period.Lost([("u:1", A), ("u:2", B), ("u:3", C), ("u:4", B)]);

        // u:3's replay was on its way: whichever activation wrote has it. The others applied from A after that.
        Assert.Equal(["u:2", "u:4"], lost);
    }

    [Fact]
    public void Entities_a_checkpoint_could_not_write_go_back_with_the_activation_that_applied_them()
    {
        var touched = new TouchedEntities();
        touched.Touch("u:1", A);
        var period = touched.Cut();
        touched.Touch("u:2", A); // a delivery during the checkpoint

        touched.NotWritten(period);

        Assert.Equal(2, touched.Count);
        Assert.Equal(["u:1", "u:2"], touched.Cut().Keys.Order());
        touched.NotWritten(period);
        // u:1's events from A are still not durable: another activation answering is a loss.
        Assert.True(touched.Touch("u:1", B));
    }

    [Fact]
    public void Entities_a_checkpoint_wrote_but_did_not_cover_are_written_again_and_await_the_replay()
    {
        var touched = new TouchedEntities();
        touched.Touch("u:1", A);
        touched.Touch("u:2", A);
        var period = touched.Cut();
        touched.Touch("u:2", A); // touched again during the checkpoint: its activation is still known

        touched.NotCovered(period);

        Assert.Equal(2, touched.Count);
        // The replay owed reaches whichever activation of u:1 answers; u:2 is still known as A.
        Assert.False(touched.Touch("u:1", B));
        Assert.True(touched.Touch("u:2", B));
    }

    [Fact]
    public void An_entity_touched_before_keeps_its_key_string()
    {
        var touched = new TouchedEntities();
        var first = touched.Key("u:", "alice");
        Assert.Equal("u:alice", first);
        touched.Touch(first, A);

        Assert.Same(first, touched.Key(['u', ':'], "alice"));
        Assert.NotSame(first, touched.Key("v:", "alice"));
        var longId = new string('x', 300);
        Assert.Equal("p:" + longId, touched.Key("p:", longId));
    }
}
