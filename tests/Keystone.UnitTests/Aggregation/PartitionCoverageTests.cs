using Keystone.Aggregation;

namespace Keystone.UnitTests.Aggregation;

public class PartitionCoverageTests
{
    [Fact]
    public async Task Barriers_arriving_together_share_one_write_that_began_after_what_they_need()
    {
        var coverage = new PartitionCoverage();
        var writes = 0;
        var gate = new TaskCompletionSource();
        async Task Write()
        {
            writes++;
            await gate.Task;
        }
        for (var p = 0; p < 8; p++) coverage.Applied(p, 10);

        var barriers = Enumerable.Range(0, 8).Select(p => coverage.EnsureAsync(p, 10, Write)).ToList();
        gate.SetResult();
        await Task.WhenAll(barriers);
        Assert.Equal(1, writes);
        Assert.True(coverage.IsDurable(3, 10));
    }

    [Fact]
    public async Task What_was_applied_after_a_write_began_needs_another_write()
    {
        var coverage = new PartitionCoverage();
        var writes = 0;
        var gate = new TaskCompletionSource();
        async Task Write()
        {
            writes++;
            if (writes == 1) await gate.Task;
        }
        coverage.Applied(0, 5);
        var first = coverage.EnsureAsync(0, 5, Write);
        // Applied while the first write is in flight: that write does not cover it.
        coverage.Applied(0, 6);
        var second = coverage.EnsureAsync(0, 6, Write);
        Assert.False(second.IsCompleted);
        gate.SetResult();
        await Task.WhenAll(first, second);
        Assert.Equal(2, writes);
        Assert.True(coverage.IsDurable(0, 6));
    }

    [Fact]
    public async Task Nothing_applied_from_a_partition_needs_no_write()
    {
        var coverage = new PartitionCoverage();
        var writes = 0;
        await coverage.EnsureAsync(4, 100, () => { writes++; return Task.CompletedTask; });
        Assert.Equal(0, writes);
        // Applied up to 7 only: a barrier at 100 needs exactly that much.
        coverage.Applied(4, 7);
        await coverage.EnsureAsync(4, 100, () => { writes++; return Task.CompletedTask; });
        Assert.Equal(1, writes);
        await coverage.EnsureAsync(4, 100, () => { writes++; return Task.CompletedTask; });
        Assert.Equal(1, writes);
    }

    [Fact]
    public async Task A_failed_write_covers_nothing()
    {
        var coverage = new PartitionCoverage();
        coverage.Applied(0, 1);
        await Assert.ThrowsAsync<InvalidOperationException>(() => coverage.EnsureAsync(0, 1, () => Task.FromException(new InvalidOperationException("storage down"))));
        Assert.False(coverage.IsDurable(0, 1));
    }

    [Fact]
    public async Task Older_positions_applied_after_a_write_of_newer_ones_are_not_durable_until_written()
    {
        // A replay re-applies 45-51 after 52 was applied and written: the write of 52 did not include them.
        var coverage = new PartitionCoverage();
        var writes = 0;
        Task Write() { writes++; return Task.CompletedTask; }
        coverage.Applied(0, 52);
        await coverage.EnsureAsync(0, 52, Write);
        Assert.Equal(1, writes);
        for (var s = 45; s <= 51; s++) coverage.Applied(0, s);

        Assert.False(coverage.IsDurable(0, 51));
        Assert.True(coverage.IsDurable(0, 44));
        await coverage.EnsureAsync(0, 51, Write);
        Assert.Equal(2, writes);
        Assert.True(coverage.IsDurable(0, 51));
        Assert.True(coverage.IsDurable(0, 52));
    }

    [Fact]
    public async Task A_barrier_does_not_return_while_an_older_position_applied_during_its_write_is_unwritten()
    {
        var coverage = new PartitionCoverage();
        var writes = 0;
        var gate = new TaskCompletionSource();
        async Task Write()
        {
            writes++;
            if (writes == 1) await gate.Task;
        }
        coverage.Applied(0, 52);
        var barrier = coverage.EnsureAsync(0, 52, Write);
        coverage.Applied(0, 48);
        gate.SetResult();
        await barrier;
        // The write that began before 48 arrived did not hold it: the barrier at 52 needed a second one.
        Assert.Equal(2, writes);
        Assert.True(coverage.IsDurable(0, 48));
        Assert.True(coverage.IsDurable(0, 52));
    }

    [Fact]
    public void A_grain_fed_by_one_partition_holds_its_coverage_in_a_few_dozen_bytes()
    {
        // Every user, profile and vertex holds one: four dictionaries cost about 850 bytes, the struct array under 200.
        static long Allocated()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var coverage = new PartitionCoverage();
            coverage.Applied(3, 10);
            coverage.Applied(3, 11);
            GC.KeepAlive(coverage);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Allocated();

        Assert.InRange(Allocated(), 1, 200);
    }
}

