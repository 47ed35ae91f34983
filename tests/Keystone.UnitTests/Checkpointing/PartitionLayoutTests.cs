using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class PartitionLayoutTests
{
    [Theory]
    [InlineData(0, 4)]
    [InlineData(4, 4)]
    [InlineData(32, 32)]
    public void Checkpoints_of_the_same_count_or_none_are_usable(int stored, int configured) =>
        Assert.Null(PartitionLayout.Problem(stored, configured));

    [Theory]
    [InlineData(8, 4)]
    [InlineData(4, 8)]
    public void Checkpoints_of_another_count_are_refused_with_both_counts_and_the_ways_out(int stored, int configured)
    {
        var problem = PartitionLayout.Problem(stored, configured);
        Assert.NotNull(problem);
        Assert.StartsWith($"The checkpoints in this silo's storage were written with Keystone:Ingest:Partitions = {stored}, and it is configured with {configured}.", problem, StringComparison.Ordinal);
        Assert.Contains($"Set Keystone:Ingest:Partitions to {stored}, or start from empty state", problem, StringComparison.Ordinal);
    }
}
