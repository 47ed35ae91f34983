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
}
