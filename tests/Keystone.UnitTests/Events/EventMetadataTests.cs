using Keystone.Events;

namespace Keystone.UnitTests.Events;

public class EventMetadataTests
{
    [Fact]
    public void With_returns_a_copy_and_keeps_the_original()
    {
        var original = EventMetadata.Of(("trace_id", "t1"));
        var added = original.With("topic", "x");
        var replaced = added.With("trace_id", "t2");

        Assert.Equal([("trace_id", "t1")], original.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal([("trace_id", "t1"), ("topic", "x")], added.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal([("trace_id", "t2"), ("topic", "x")], replaced.Select(kv => (kv.Key, kv.Value)));
    }

    [Fact]
    public void From_keeps_the_last_value_of_a_repeated_key()
    {
        var m = EventMetadata.Of(("a", "1"), ("b", "2"), ("a", "3"));
        Assert.Equal(2, m.Count);
        Assert.Equal("3", m["a"]);
        Assert.Same(EventMetadata.Empty, EventMetadata.From([]));
    }

    [Fact]
    public void With_several_entries_replaces_and_appends_in_one_copy_and_keeps_the_original()
    {
        var original = EventMetadata.Of(("trace_id", "t1"), ("topic", "old"));
        var enriched = original.With(new("topic", "new"), new("partition", "3"), new KeyValuePair<string, string>("partition", "4"));

        Assert.Equal([("trace_id", "t1"), ("topic", "old")], original.Select(kv => (kv.Key, kv.Value)));
        Assert.Equal([("trace_id", "t1"), ("topic", "new"), ("partition", "4")], enriched.Select(kv => (kv.Key, kv.Value)));
    }

    [Fact]
    public void Foreach_over_the_metadata_and_over_its_interface_see_the_same_entries()
    {
        var m = EventMetadata.Of(("a", "1"), ("b", "2"));
        var direct = new List<(string, string)>();
        foreach (var (k, v) in m) direct.Add((k, v));
        IEnumerable<KeyValuePair<string, string>> asInterface = m;
        Assert.Equal([("a", "1"), ("b", "2")], direct);
        Assert.Equal(direct, asInterface.Select(kv => (kv.Key, kv.Value)));
    }

    [Fact]
    public void Lookups()
    {
        var m = EventMetadata.Of(("a", "1"));
        Assert.True(m.ContainsKey("a"));
        Assert.Equal("1", m.Get("a"));
        Assert.Null(m.Get("b"));
        Assert.Throws<KeyNotFoundException>(() => m["b"]);
        Assert.Equal(["a"], m.Keys);
        Assert.Equal(["1"], m.Values);
        Assert.Equal("a=1", m.ToString());
    }

    [Fact]
    public void Equality_ignores_order()
    {
        var a = EventMetadata.Of(("a", "1"), ("b", "2"));
        var b = EventMetadata.Of(("b", "2"), ("a", "1"));
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, EventMetadata.Of(("a", "1"), ("b", "3")));
        Assert.NotEqual(a, EventMetadata.Of(("a", "1")));
    }
}
