using Keystone.Aggregation;

namespace Keystone.UnitTests.Aggregation;

public class AggregationOptionsTests
{
    [Fact]
    public void The_defaults_have_no_problems()
    {
        Assert.Empty(new AggregationOptions().Problems());
    }

    [Theory]
    [InlineData(300, 300)]
    [InlineData(300, 301)]
    [InlineData(300, -1)]
    public void An_offset_outside_zero_to_size_is_named(int sizeSeconds, int offsetSeconds)
    {
        var options = new AggregationOptions { WindowSize = TimeSpan.FromSeconds(sizeSeconds), WindowOffset = TimeSpan.FromSeconds(offsetSeconds) };

        Assert.Equal(["Keystone:Aggregation:WindowOffset must be at least 0 and less than WindowSize."], options.Problems());
    }

    [Fact]
    public void A_zero_window_size_is_named_and_so_is_the_offset_it_makes_invalid()
    {
        var options = new AggregationOptions { WindowSize = TimeSpan.Zero };

        Assert.Equal(
            ["Keystone:Aggregation:WindowSize must be positive.", "Keystone:Aggregation:WindowOffset must be at least 0 and less than WindowSize."],
            options.Problems());
    }

    [Theory]
    [InlineData("OutOfOrderness", "Keystone:Aggregation:OutOfOrderness must not be negative.")]
    [InlineData("AllowedLateness", "Keystone:Aggregation:AllowedLateness must not be negative.")]
    [InlineData("IdleTimeout", "Keystone:Aggregation:IdleTimeout must be positive.")]
    [InlineData("SessionGap", "Keystone:Aggregation:SessionGap must be positive.")]
    [InlineData("CheckpointInterval", "Keystone:Aggregation:CheckpointInterval must be at least 100 ms.")]
    [InlineData("AffinityHalfLife", "Keystone:Aggregation:AffinityHalfLife must be positive.")]
    public void Each_invalid_duration_is_named(string key, string message)
    {
        var options = new AggregationOptions();
        // The smallest step past each limit.
        var invalid = key is "OutOfOrderness" or "AllowedLateness" ? TimeSpan.FromTicks(-1)
            : key == "CheckpointInterval" ? TimeSpan.FromMilliseconds(99.999)
            : TimeSpan.Zero;
        typeof(AggregationOptions).GetProperty(key)!.SetValue(options, invalid);

        Assert.Equal([message], options.Problems());
    }

    [Fact]
    public void Zero_lateness_and_out_of_orderness_are_allowed()
    {
        var options = new AggregationOptions { AllowedLateness = TimeSpan.Zero, OutOfOrderness = TimeSpan.Zero, CheckpointInterval = TimeSpan.FromMilliseconds(100) };

        Assert.Empty(options.Problems());
    }

    [Fact]
    public void Each_bad_topic_name_is_named()
    {
        var options = new AggregationOptions { StatsTopic = "User-Stats", TriggerTopic = "ab", LateTopic = "-late" };

        Assert.Equal(
            [
                "Keystone:Aggregation:StatsTopic: 'User-Stats' is not a valid topic name.",
                "Keystone:Aggregation:TriggerTopic: 'ab' is not a valid topic name.",
                "Keystone:Aggregation:LateTopic: '-late' is not a valid topic name.",
            ],
            options.Problems());
    }

    [Fact]
    public void The_dedupe_horizon_covers_window_lateness_margin_and_two_checkpoints()
    {
        var options = new AggregationOptions
        {
            WindowSize = TimeSpan.FromMinutes(5),
            AllowedLateness = TimeSpan.FromMinutes(2),
            DedupeMargin = TimeSpan.FromMinutes(1),
            CheckpointInterval = TimeSpan.FromSeconds(30),
        };

        // 5 + 2 + 1 + 0.5 + 0.5 minutes.
        Assert.Equal(TimeSpan.FromMinutes(9), options.DedupeHorizon);
    }

    [Fact]
    public void Windows_uses_size_and_offset()
    {
        var windows = new AggregationOptions { WindowSize = TimeSpan.FromMinutes(10), WindowOffset = TimeSpan.FromMinutes(3) }.Windows();

        Assert.Equal((TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(3)), (windows.Size, windows.Offset));
    }

    [Fact]
    public void An_idle_entity_lifetime_under_two_checkpoints_is_named()
    {
        var options = new AggregationOptions { CheckpointInterval = TimeSpan.FromMinutes(1), IdleEntityLifetime = TimeSpan.FromSeconds(90) };

        var problem = Assert.Single(options.Problems());
        Assert.StartsWith("Keystone:Aggregation:IdleEntityLifetime (00:01:30) must be at least twice CheckpointInterval (00:01:00)", problem);
        options.IdleEntityLifetime = TimeSpan.FromMinutes(2);
        Assert.Empty(options.Problems());
    }

    [Fact]
    public void Unset_an_idle_entity_lives_five_minutes_or_two_checkpoints_if_longer()
    {
        Assert.Equal(TimeSpan.FromMinutes(5), new AggregationOptions().EntityLifetime);
        Assert.Equal(TimeSpan.FromMinutes(6), new AggregationOptions { CheckpointInterval = TimeSpan.FromMinutes(3) }.EntityLifetime);
        Assert.Equal(TimeSpan.FromHours(2), new AggregationOptions { CheckpointInterval = TimeSpan.FromHours(1) }.EntityLifetime);
        Assert.Equal(TimeSpan.FromMinutes(3), new AggregationOptions { IdleEntityLifetime = TimeSpan.FromMinutes(3) }.EntityLifetime);
    }
}
