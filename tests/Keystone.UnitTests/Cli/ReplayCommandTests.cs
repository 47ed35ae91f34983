using Keystone.Cli;
using Keystone.Cli.Commands;

namespace Keystone.UnitTests.Cli;

public class ReplayCommandTests
{
    [Fact]
    public void A_valid_range_becomes_a_request()
    {
        var r = ReplayCommand.Parse("2026-11-27T04:00:00Z", "2026-11-27T05:00:00+00:00", "video.play.started", "replayed");
        Assert.Equal((new DateTimeOffset(2026, 11, 27, 4, 0, 0, TimeSpan.Zero), TimeSpan.FromHours(1), "video.play.started", "replayed"), (r.From, r.To - r.From, r.EventType, r.ToTopic));
    }

    [Theory]
    [InlineData("yesterday", "2026-11-27T05:00:00Z", null, "--from 'yesterday' is not an ISO-8601")]
    [InlineData("2026-11-27T05:00:00Z", "2026-11-27T04:00:00Z", null, "--to must be later than --from")]
    [InlineData("2026-11-27T04:00:00Z", "2026-11-27T05:00:00Z", "Bad Topic", "--to-topic 'Bad Topic' is not a valid topic name")]
    public void Mistakes_are_usage_errors(string from, string to, string? topic, string expected)
    {
        var e = Assert.Throws<CliException>(() => ReplayCommand.Parse(from, to, null, topic));
        Assert.StartsWith(expected, e.Message);
    }
}
