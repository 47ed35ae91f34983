using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public class WarmStatesTests
{
    // Random bytes: compression cannot shrink them, so an entry costs exactly its size (the budget arithmetic below).
    private static byte[] Data(int n) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(n);

    private static long Cost(string key, int bytes) => bytes + 2L * key.Length + WarmStates.EntryOverhead;

    [Fact]
    public void A_state_is_taken_back_once_and_only_at_the_version_it_was_kept_as()
    {
        var warm = new WarmStates(10_000);
        var v1 = Data(100);
        Assert.True(warm.Put("activity|user/a", 1, v1));
        Assert.False(warm.TryTake("activity|user/b", 1, out _));

        Assert.True(warm.TryTake("activity|user/a", 1, out var got));
        Assert.Equal(v1, got);
        // Taken: the entity is an activation again.
        Assert.False(warm.TryTake("activity|user/a", 1, out _));
        Assert.Equal(0, warm.Bytes);

        // Another version in the index means the bucket wrote (or learned of) something newer: the entry is stale, and dropped.
        warm.Put("activity|user/a", 1, v1);
        Assert.False(warm.TryTake("activity|user/a", 2, out _));
        Assert.Equal(0, warm.Count);
        Assert.Equal(0, warm.Bytes);
    }

    [Fact]
    public void A_newer_state_replaces_the_older_one_and_a_removal_forgets_it()
    {
        var warm = new WarmStates(10_000);
        warm.Put("k", 1, Data(100));
        warm.Put("k", 2, Data(300));
        Assert.Equal(1, warm.Count);
        Assert.Equal(Cost("k", 300), warm.Bytes);

        warm.Remove("k");
        Assert.False(warm.TryTake("k", 2, out _));
        Assert.Equal(0, warm.Bytes);
        warm.Put("k", 3, Data(50));
        Assert.True(warm.TryTake("k", 3, out var got));
        Assert.Equal(50, got.Length);
    }

    [Fact]
    public void Past_the_budget_the_longest_kept_go_first()
    {
        // Room for three states of 200 bytes under keys of one character.
        var warm = new WarmStates(3 * Cost("a", 200));
        warm.Put("a", 1, Data(200));
        warm.Put("b", 1, Data(200));
        warm.Put("c", 1, Data(200));
        warm.Put("a", 2, Data(200)); // kept again: now the newest.

        warm.Put("d", 1, Data(200));
        Assert.Equal(["a", "c", "d"], new[] { "a", "b", "c", "d" }.Where(warm.Contains));
        Assert.Equal(3 * Cost("a", 200), warm.Bytes);

        // A larger state evicts as many as it needs, oldest first: "c", then "a".
        Assert.True(warm.Put("e", 1, Data(400)));
        Assert.Equal(["d", "e"], new[] { "a", "b", "c", "d", "e" }.Where(warm.Contains));
        Assert.Equal(Cost("d", 200) + Cost("e", 400), warm.Bytes);
    }

    [Fact]
    public void A_state_larger_than_the_budget_or_a_budget_of_zero_keeps_nothing()
    {
        var warm = new WarmStates(Cost("a", 100));
        Assert.True(warm.Put("a", 1, Data(100)));
        Assert.False(warm.Put("big", 1, Data(1_000)));
        Assert.False(warm.TryTake("big", 1, out _));
        Assert.True(warm.TryTake("a", 1, out _));

        var none = new WarmStates(0);
        Assert.False(none.Put("a", 1, Data(1)));
        Assert.Equal(0, none.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmStates(-1));
    }

    [Fact]
    public void A_state_is_kept_compressed_and_handed_back_byte_for_byte()
    {
        var json = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 20).Select(i =>
            $"{{\"start\":\"2026-12-05T10:{i:D2}:00+00:00\",\"plays\":{i},\"pauses\":1,\"videos\":[\"video-{i % 3:D5}\"],\"devices\":[\"tv\"]}},")));
        var warm = new WarmStates(100_000);
        Assert.True(warm.Put("activity|user/a", 7, json));
        Assert.True(warm.Bytes < json.Length / 2, $"{warm.Bytes} bytes kept for {json.Length}");
        Assert.True(warm.TryTake("activity|user/a", 7, out var back));
        Assert.Equal(json, back);
    }
}
