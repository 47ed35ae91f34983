using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Graph;

namespace Keystone.UnitTests.Events;

/// <summary>
/// Every stable hash in the system pinned to values computed by an independent FNV-1a implementation. They end up in
/// partition assignments, de-duplication keys and checkpoints: a change to any of them moves users to other
/// partitions or forgets what was already counted, across a deploy. Partitioning's own values are in PartitioningTests.
/// </summary>
public class StableHashGoldenTests
{
    [Theory]
    [InlineData("", 17280346270528514342UL)]
    [InlineData("a", 9413272369427828315UL)]
    [InlineData("user-123", 7152381403476165362UL)]
    [InlineData("日本", 1310764441268014659UL)]
    public void HyperLogLog_hash_is_pinned(string value, ulong expected) => Assert.Equal(expected, HyperLogLog.Hash(value));

    [Theory]
    [InlineData("", -3750763034362895579L)]
    [InlineData("a", -5808556873153909620L)]
    [InlineData("user-123", -7449287063435791533L)]
    [InlineData("日本", -9125851917711563644L)]
    public void Ad_session_key_is_pinned(string sessionId, long expected) => Assert.Equal(expected, AdSessions.Key(sessionId));

    [Fact]
    public void Graph_derived_event_id_is_pinned() =>
        Assert.Equal(Guid.Parse("3b7edf22-10b0-4581-9cdf-5943d86b7acf"), GraphNode.Derive(Guid.Empty, "played", "video-1"));

    [Theory]
    [InlineData("user-123", 10997457012813587377UL)]
    [InlineData("", 14695981038468906945UL)]
    [InlineData("a", 12638187199001669824UL)]
    public void Partition_hash_is_pinned(string key, ulong expected) => Assert.Equal(expected, Partitioning.Fnv1a64(key));
}
