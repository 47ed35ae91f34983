using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public sealed class UnansweredWritesTests
{
    private static readonly byte[] Sent = "the state as sent"u8.ToArray();

    [Fact]
    public void The_bytes_sent_at_the_version_the_write_would_have_made_are_the_writers_own()
    {
        var writes = new UnansweredWrites();
        writes.Unanswered("activity|user/u1", 9, Sent);
        Assert.True(writes.IsPending("activity|user/u1"));

        Assert.True(writes.MayBeOwn("activity|user/u1", 9, 10, out var hash));
        Assert.True(writes.IsOwn(hash, Sent));
        writes.Answered("activity|user/u1");
        Assert.False(writes.IsPending("activity|user/u1"));
        Assert.Equal(0, writes.Count);
        Assert.Equal((1, 1), writes.Counts);
    }

    [Fact]
    public void Other_bytes_at_that_version_are_another_writers()
    {
        var writes = new UnansweredWrites();
        writes.Unanswered("k", 9, Sent);

        Assert.True(writes.MayBeOwn("k", 9, 10, out var hash));
        Assert.False(writes.IsOwn(hash, "another activation's state"u8));
        Assert.Equal((1, 0), writes.Counts);
    }

    [Theory]
    [InlineData(9, 11)] // written again after it: by someone else, whatever the unanswered write did
    [InlineData(8, 9)]  // the writer expects another version than the one it sent with
    public void A_version_the_unanswered_write_cannot_have_made_is_a_conflict_and_the_write_is_forgotten(long expected, long current)
    {
        var writes = new UnansweredWrites();
        writes.Unanswered("k", 9, Sent);

        Assert.False(writes.MayBeOwn("k", expected, current, out _));
        Assert.Equal(0, writes.Count);
    }

    [Fact]
    public void A_key_never_left_unanswered_is_a_conflict()
    {
        var writes = new UnansweredWrites();
        Assert.False(writes.MayBeOwn("k", 9, 10, out _));
    }

    [Fact]
    public void An_answered_write_forgets_an_older_unanswered_one()
    {
        var writes = new UnansweredWrites();
        writes.Unanswered("k", 9, Sent);
        writes.Answered("k");
        Assert.False(writes.MayBeOwn("k", 9, 10, out _));
    }

    [Fact]
    public void A_comparison_still_to_make_keeps_the_entry_for_a_retry()
    {
        var writes = new UnansweredWrites();
        writes.Unanswered("k", 9, Sent);
        // The read of the stored state failed: nothing answered yet.
        Assert.True(writes.MayBeOwn("k", 9, 10, out _));
        Assert.True(writes.MayBeOwn("k", 9, 10, out var hash));
        Assert.True(writes.IsOwn(hash, Sent));
    }

    [Fact]
    public void Past_its_capacity_it_remembers_no_new_key_and_still_counts_it()
    {
        var writes = new UnansweredWrites(capacity: 2);
        writes.Unanswered("a", 1, Sent);
        writes.Unanswered("b", 1, Sent);
        writes.Unanswered("c", 1, Sent);
        writes.Unanswered("a", 2, Sent); // a key it holds is updated

        Assert.Equal(2, writes.Count);
        Assert.Equal(4, writes.Counts.Unanswered);
        Assert.False(writes.MayBeOwn("c", 1, 2, out _));
        Assert.True(writes.MayBeOwn("a", 2, 3, out _));
    }
}
