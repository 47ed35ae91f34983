using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class ReplayDebtTests
{
    [Fact]
    public void A_replay_asked_for_while_another_is_on_its_way_is_owed_after_it()
    {
        var debt = new ReplayDebt();
        Assert.True(debt.TryStart()); // a silo left: the replay starts
        Assert.False(debt.Owed);

        // A barrier finds an entity that lost its memory after the replay passed it: no second replay now...
        Assert.False(debt.TryStart());
        Assert.True(debt.Owed);
        debt.Ended(succeeded: true);

        // ...but the debt outlives the first one, and the next checkpoint or delivery replays again.
        Assert.True(debt.Owed);
        Assert.True(debt.TryStart());
        Assert.False(debt.Owed);
    }

    [Fact]
    public void An_entity_that_lost_its_memory_is_owed_a_replay_until_one_starts()
    {
        var debt = new ReplayDebt();
        debt.Owe();
        Assert.True(debt.Owed);
        Assert.True(debt.TryStart());
        Assert.True(debt.InFlight);
        debt.Ended(succeeded: true);
        Assert.False(debt.Owed);
        Assert.False(debt.InFlight);
    }

    [Fact]
    public void A_replay_that_failed_is_owed_again()
    {
        var debt = new ReplayDebt();
        Assert.True(debt.TryStart());
        debt.Ended(succeeded: false);
        Assert.True(debt.Owed);
        Assert.False(debt.InFlight);
    }

    [Fact]
    public void An_inline_replay_takes_the_debt_and_gives_it_back_if_it_fails()
    {
        var debt = new ReplayDebt();
        debt.Owe();
        debt.TakeInline();
        Assert.False(debt.Owed);
        debt.Owe(); // it failed
        Assert.True(debt.Owed);
    }
}
