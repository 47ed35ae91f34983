using Keystone.Cli.Commands;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.UnitTests.Cli;

public class TailCursorsTests
{
    private static readonly KeystoneEvent Event = KeystoneEvent.Create("system.health_check", Payload.Create(("component", "x")), new EventSource("test"));

    private static TappedEvent[] Page(int partition, params long[] sequences) =>
        sequences.Select(s => new TappedEvent(s, DateTimeOffset.UtcNow, partition, Event)).ToArray();

    [Fact]
    public void Starts_at_zero_and_follows_each_partition_separately()
    {
        var cursors = new TailCursors(2);
        Assert.Equal(0, cursors[0]);
        Assert.Equal(0, cursors.Advance(0, Page(0, 1, 2, 3)));
        Assert.Equal(0, cursors.Advance(1, Page(1, 1)));
        Assert.Equal(3, cursors[0]);
        Assert.Equal(1, cursors[1]);
    }

    [Fact]
    public void An_empty_page_leaves_the_cursor()
    {
        var cursors = new TailCursors(1);
        cursors.Advance(0, Page(0, 5));
        Assert.Equal(0, cursors.Advance(0, []));
        Assert.Equal(5, cursors[0]);
    }

    [Fact]
    public void Reports_events_that_scrolled_out_of_the_tap_between_polls()
    {
        var cursors = new TailCursors(1);
        cursors.Advance(0, Page(0, 10));
        Assert.Equal(4, cursors.Advance(0, Page(0, 15, 16)));
        Assert.Equal(16, cursors[0]);
    }

    [Fact]
    public void Never_moves_backwards()
    {
        var cursors = new TailCursors(1);
        cursors.Advance(0, Page(0, 10));
        cursors.Advance(0, Page(0, 4));
        Assert.Equal(10, cursors[0]);
    }
}
