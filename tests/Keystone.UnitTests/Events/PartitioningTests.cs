using Keystone.Events;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Events;

public class PartitioningTests
{
    [Theory]
    // Pinned from an independent FNV-1a 64 (with the high half folded in) so that any change to the hash, which would
    // move every user to another partition and break per-user order across a deploy, fails here.
    [InlineData("user-123", 10997457012813587377UL)]
    [InlineData("", 14695981038468906945UL)]
    [InlineData("a", 12638187199001669824UL)]
    public void Fnv_hash_is_pinned(string key, ulong expected) => Assert.Equal(expected, Partitioning.Fnv1a64(key));

    [Fact]
    public void Known_keys_map_to_pinned_partitions()
    {
        Assert.Equal(1, Partitioning.PartitionOf("user-123", 8));
        Assert.Equal(0, Partitioning.PartitionOf("a", 8));
        Assert.Equal((int)(10997457012813587377UL % 1000), Partitioning.PartitionOf("user-123", 1000));
        Assert.Equal(0, Partitioning.PartitionOf("anything", 1));
    }

    [Fact]
    public void Long_and_non_ascii_keys_hash_their_utf8_bytes()
    {
        // 300 characters take the heap path instead of the stack buffer; the result must not depend on which.
        Assert.Equal(16685238072700668618UL, Partitioning.Fnv1a64(new string('x', 300)));
        Assert.Equal(775207407878539526UL, Partitioning.Fnv1a64("é"));
        Assert.Equal(1305338236139122852UL, Partitioning.Fnv1a64("日本"));
    }

    [Fact]
    public void Same_key_always_lands_on_the_same_partition()
    {
        var first = Enumerable.Range(0, 100).Select(i => Partitioning.PartitionOf($"user-{i}", 8)).ToArray();
        var second = Enumerable.Range(0, 100).Select(i => Partitioning.PartitionOf($"user-{i}", 8)).ToArray();
        Assert.Equal(first, second);
    }

    [Fact]
    public void Ten_thousand_users_spread_evenly_over_eight_partitions()
    {
        var counts = new int[8];
        for (var i = 0; i < 10_000; i++) counts[Partitioning.PartitionOf($"user-{i:D6}", 8)]++;

        const double mean = 10_000 / 8.0;
        Assert.All(counts, c => Assert.InRange(c, mean * 0.8, mean * 1.2));
    }

    [Fact]
    public void Events_partition_by_user_id_or_else_by_event_id()
    {
        var a = Sample.PlayStarted(userId: "user-42");
        var b = Sample.Payment(userId: "user-42");
        Assert.Equal("user-42", a.PartitionKey);
        Assert.Equal(Partitioning.PartitionOf(a, 16), Partitioning.PartitionOf(b, 16));
        Assert.Equal(Partitioning.PartitionOf("user-42", 16), Partitioning.PartitionOf(a, 16));

        var health = Sample.HealthCheck();
        Assert.Null(health.UserId);
        Assert.Equal(health.EventId.ToString("D"), health.PartitionKey);
        Assert.Equal(Partitioning.PartitionOf(health.EventId.ToString("D"), 16), Partitioning.PartitionOf(health, 16));
    }

    [Fact]
    public void Fewer_than_one_partition_is_an_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.PartitionOf("k", 0));
    }

    [Theory]
    [InlineData("""{"user_id":"user-123","video_id":"v"}""")]
    [InlineData("""{"video_id":"v","user_id":"d\u00e9j\u00e0"}""")]
    [InlineData("""{"user_id":"日本"}""")]
    [InlineData("""{"user_id":""}""")]
    [InlineData("""{"user_id":42}""")]
    [InlineData("""{"profile_id":"p-1"}""")]
    [InlineData("""{}""")]
    public void An_events_partition_is_its_partition_keys(string payload)
    {
        // PartitionOf(event) hashes in place; it must agree with the key's string (pinned above) for every kind of key.
        foreach (var id in new[] { Guid.Empty, Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), Guid.NewGuid() })
        {
            var e = new KeystoneEvent(id, "t", DateTimeOffset.UnixEpoch, "1.0", new EventSource("s", "h", "r"), Payload.Parse(payload), EventMetadata.Empty);
            foreach (var partitions in new[] { 1, 8, 1000 })
                Assert.Equal(Partitioning.PartitionOf(e.PartitionKey, partitions), Partitioning.PartitionOf(e, partitions));
        }
    }
}
