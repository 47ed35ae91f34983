using Keystone.Events;
using Keystone.Graph;

namespace Keystone.UnitTests.Graph;

public class GraphChangeIdsTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 5, TimeSpan.Zero);

    [Fact]
    public async Task A_delivery_replayed_after_its_nodes_lost_their_memory_emits_the_same_event_ids()
    {
        KeystoneEvent[] first = [G.Content("v1", "s1", "drama"), G.Play("u1", "v1"), G.Play("u2", "v1", profile: "p2")];
        KeystoneEvent[] second = [G.Play("u1", "v2"), G.Event("user.login", G.T0, ("user_id", "u3"), ("device_id", "d3"), ("profile_id", "p3"))];

        var original = new MemoryGraph();
        var emitted = new List<KeystoneEvent>();
        emitted.AddRange(GraphEvents.Changes(await original.Deliver(first), 0, 1, Now));
        emitted.AddRange(GraphEvents.Changes(await original.Deliver(second), 0, 2, Now));

        // A crash before the checkpoint: fresh nodes, the same deliveries at the same positions.
        var replayed = new MemoryGraph();
        var again = new List<KeystoneEvent>();
        again.AddRange(GraphEvents.Changes(await replayed.Deliver(first), 0, 1, Now));
        again.AddRange(GraphEvents.Changes(await replayed.Deliver(second), 0, 2, Now));

        Assert.Contains(emitted, e => e.EventType == GraphEvents.EdgeChangedType);
        Assert.Contains(emitted, e => e.EventType == GraphEvents.NodeChangedType);
        Assert.Equal(emitted.Select(e => e.EventId), again.Select(e => e.EventId));
        Assert.Equal(emitted.Count, emitted.Select(e => e.EventId).Distinct().Count());
    }

    [Fact]
    public void Ids_differ_by_partition_position_and_what_changed()
    {
        var ids = new GraphChangeIds(3, 42);
        var edge = ids.Edge(NodeType.User, "u1", EdgeLabel.Watches, "v1");
        Assert.Equal(edge, new GraphChangeIds(3, 42).Edge(NodeType.User, "u1", EdgeLabel.Watches, "v1"));

        Guid[] others =
        [
            new GraphChangeIds(4, 42).Edge(NodeType.User, "u1", EdgeLabel.Watches, "v1"),
            new GraphChangeIds(3, 43).Edge(NodeType.User, "u1", EdgeLabel.Watches, "v1"),
            ids.Edge(NodeType.Profile, "u1", EdgeLabel.Watches, "v1"),
            ids.Edge(NodeType.User, "u2", EdgeLabel.Watches, "v1"),
            ids.Edge(NodeType.User, "u1", EdgeLabel.Uses, "v1"),
            ids.Edge(NodeType.User, "u1", EdgeLabel.Watches, "v2"),
            // The same characters split differently between the two ids.
            ids.Edge(NodeType.User, "u1v", EdgeLabel.Watches, "1"),
            ids.Node(NodeType.User, "u1"),
            ids.Node(NodeType.Video, "u1"),
        ];
        Assert.DoesNotContain(edge, others);
        Assert.Equal(others.Length, others.Distinct().Count());
    }

    [Fact]
    public void Ids_do_not_depend_on_the_process_and_are_marked_as_derived()
    {
        // Replay happens in another process after a crash: nothing randomised per process (string hash codes) may enter.
        // The value was worked out apart from this code (a short script over SHA-256 and FNV-1a, as the remarks say).
        var id = new GraphChangeIds(0, 1).Edge(NodeType.User, "u1", EdgeLabel.Watches, "v1");
        Assert.Equal(Guid.Parse("15b2dd22-cdcf-8a3e-abf6-ab018b9c5eb6"), id);
        Assert.Equal(8, id.Version);
        Assert.Equal(0b10, id.Variant >> 2);
    }
}
