using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class CheckpointTrackerTests
{
    private static readonly string[] Consumers = ["activity", "archive"];

    [Fact]
    public void A_checkpoint_covers_its_position_only_when_the_router_and_every_consumer_have_answered()
    {
        var tracker = new CheckpointTracker(2, Consumers);
        var n = tracker.Begin();

        Assert.False(tracker.Injected(n, 0, 40));
        Assert.False(tracker.Acknowledged(n, 0, "activity"));
        Assert.Equal(0, tracker.Covered(0));
        Assert.True(tracker.Acknowledged(n, 0, "archive"));
        Assert.Equal(40, tracker.Covered(0));

        // Partition 1 has not completed: the checkpoint as a whole has not.
        Assert.Equal(0, tracker.Completed);
        Assert.Equal(0, tracker.Covered(1));
    }

    [Fact]
    public void Acknowledgements_may_arrive_before_the_router_reports_its_position()
    {
        var tracker = new CheckpointTracker(1, Consumers);
        var n = tracker.Begin();
        Assert.False(tracker.Acknowledged(n, 0, "activity"));
        Assert.False(tracker.Acknowledged(n, 0, "archive"));
        Assert.True(tracker.Injected(n, 0, 7));
        Assert.Equal(7, tracker.Covered(0));
        Assert.Equal(n, tracker.Completed);
    }

    [Fact]
    public void Barriers_align_across_several_consumers_a_missing_one_holds_the_checkpoint()
    {
        var tracker = new CheckpointTracker(1, ["activity", "graph", "ads", "archive"]);
        var n = tracker.Begin();
        tracker.Injected(n, 0, 100);
        foreach (var c in new[] { "activity", "graph", "archive" }) Assert.False(tracker.Acknowledged(n, 0, c));
        // A repeated acknowledgement is not a missing one.
        Assert.False(tracker.Acknowledged(n, 0, "archive"));
        Assert.Equal(0, tracker.Covered(0));
        Assert.True(tracker.Acknowledged(n, 0, "ads"));
        Assert.Equal(100, tracker.Covered(0));
    }

    [Fact]
    public void A_newer_checkpoint_completing_drops_older_pending_ones_and_late_answers_to_them_change_nothing()
    {
        var tracker = new CheckpointTracker(1, Consumers);
        var first = tracker.Begin();
        tracker.Injected(first, 0, 10);
        tracker.Acknowledged(first, 0, "activity");
        var second = tracker.Begin();
        tracker.Injected(second, 0, 25);
        tracker.Acknowledged(second, 0, "activity");
        Assert.True(tracker.Acknowledged(second, 0, "archive"));
        Assert.Equal(25, tracker.Covered(0));
        Assert.Equal(0, tracker.PendingCount);

        Assert.False(tracker.Acknowledged(first, 0, "archive"));
        Assert.Equal(25, tracker.Covered(0));
    }

    [Fact]
    public void Covered_positions_never_move_back()
    {
        var tracker = new CheckpointTracker(1, [], started: 3, covered: [50]);
        var n = tracker.Begin();
        Assert.Equal(4, n);
        Assert.True(tracker.Injected(n, 0, 20));
        Assert.Equal(50, tracker.Covered(0));
    }

    [Fact]
    public void An_abandoned_partition_leaves_its_position_where_it_was()
    {
        var tracker = new CheckpointTracker(1, Consumers);
        var n = tracker.Begin();
        tracker.Abandon(n, 0);
        Assert.False(tracker.Acknowledged(n, 0, "activity"));
        Assert.Equal(0, tracker.Covered(0));
        Assert.Equal(0, tracker.PendingCount);
    }
}
