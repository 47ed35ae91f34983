using Keystone.Pipeline;

namespace Keystone.UnitTests.Pipeline;

public class RecentIdsTests
{
    [Fact]
    public void Add_contains_and_duplicates()
    {
        var ids = new RecentIds<string>(3);

        Assert.True(ids.TryAdd("a"));
        Assert.True(ids.Contains("a"));
        Assert.False(ids.Contains("b"));
        Assert.False(ids.TryAdd("a"));
        Assert.Equal(1, ids.Count);
        Assert.Equal(3, ids.Capacity);
    }

    [Fact]
    public void The_oldest_id_is_forgotten_at_capacity()
    {
        var ids = new RecentIds<int>(3);
        foreach (var i in new[] { 1, 2, 3, 4 }) Assert.True(ids.TryAdd(i));

        Assert.Equal(3, ids.Count);
        Assert.False(ids.Contains(1));
        Assert.Equal([2, 3, 4], ids.InOrder());
        // 1 was forgotten, so it counts as new again and pushes out 2.
        Assert.True(ids.TryAdd(1));
        Assert.Equal([3, 4, 1], ids.InOrder());
        Assert.False(ids.Contains(2));
    }

    [Fact]
    public void A_repeat_does_not_refresh_or_evict()
    {
        var ids = new RecentIds<int>(2);
        ids.TryAdd(1);
        ids.TryAdd(2);
        Assert.False(ids.TryAdd(1));
        Assert.Equal([1, 2], ids.InOrder());
    }

    [Fact]
    public void InOrder_is_oldest_first_before_and_after_wrapping()
    {
        var ids = new RecentIds<int>(4);
        ids.TryAdd(10);
        ids.TryAdd(20);
        Assert.Equal([10, 20], ids.InOrder());

        for (var i = 30; i <= 90; i += 10) ids.TryAdd(i);
        Assert.Equal([60, 70, 80, 90], ids.InOrder());
    }

    [Fact]
    public void Re_adding_in_order_rebuilds_the_same_horizon()
    {
        var ids = new RecentIds<Guid>(50);
        for (var i = 0; i < 137; i++) ids.TryAdd(Guid.NewGuid());

        var copy = new RecentIds<Guid>(50);
        foreach (var id in ids.InOrder()) Assert.True(copy.TryAdd(id));

        Assert.Equal(ids.InOrder(), copy.InOrder());
    }

    [Fact]
    public void Clear_forgets_everything()
    {
        var ids = new RecentIds<int>(2);
        ids.TryAdd(1);
        ids.TryAdd(2);
        ids.Clear();

        Assert.Equal(0, ids.Count);
        Assert.Empty(ids.InOrder());
        Assert.True(ids.TryAdd(1));
        Assert.Equal([1], ids.InOrder());
    }

    [Fact]
    public void Capacity_must_be_positive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecentIds<int>(0));
    }
}
