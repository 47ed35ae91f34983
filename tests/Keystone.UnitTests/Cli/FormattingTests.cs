using Keystone.Cli;
using Keystone.Client.Publishing;
using Keystone.Topics;

namespace Keystone.UnitTests.Cli;

public class FormattingTests
{
    private static readonly PublisherSnapshot Snapshot = new(4_496, 2, 1, 0, 6, 47, 95.7, 1000, LatencySnapshot.Empty);

    [Fact]
    public void Progress_line_has_every_counter()
    {
        var line = Formatting.Progress(TimeSpan.FromSeconds(65), 499.6, 2_496, Snapshot);
        Assert.Equal("01:05  500 ev/s  generated 2,496  published 4,496  rejected 2  retried 1  dead-lettered 0  queue 6", line);
    }

    [Theory]
    [InlineData(0, "00:00")]
    [InlineData(59.9, "00:59")]
    [InlineData(3_599, "59:59")]
    [InlineData(3_661, "1:01:01")]
    public void Elapsed(double seconds, string expected) => Assert.Equal(expected, Formatting.Elapsed(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(0.5, "0.5")]
    [InlineData(12.34, "12.3")]
    [InlineData(1_999.6, "2,000")]
    public void Rate(double rate, string expected) => Assert.Equal(expected, Formatting.Rate(rate));

    [Fact]
    public void Age()
    {
        var now = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal("never", Formatting.Age(null, now));
        Assert.Equal("just now", Formatting.Age(now.AddMilliseconds(-300), now));
        Assert.Equal("4s ago", Formatting.Age(now.AddSeconds(-4), now));
        Assert.Equal("3m ago", Formatting.Age(now.AddMinutes(-3.5), now));
        Assert.Equal("2h ago", Formatting.Age(now.AddHours(-2), now));
        Assert.Equal("5d ago", Formatting.Age(now.AddDays(-5), now));
    }

    [Theory]
    [InlineData(0, "-")]
    [InlineData(1.24, "1.2 ms")]
    [InlineData(125, "125 ms")]
    [InlineData(2_500, "2,500 ms")]
    [InlineData(12_500, "12.5 s")]
    public void Millis(double ms, string expected) => Assert.Equal(expected, Formatting.Millis(ms));

    [Fact]
    public void Table_pads_columns_and_right_aligns_numbers()
    {
        var text = Formatting.Table(["NAME", "COUNT"], [["a", "1"], ["longer", "1,000"]], new HashSet<int> { 1 });
        Assert.Equal("NAME    COUNT\na           1\nlonger  1,000\n", text);
    }

    [Fact]
    public void Table_without_rows_is_just_the_header() =>
        Assert.Equal("A  B\n", Formatting.Table(["A", "B"], []));

    [Fact]
    public void Rejection_names_location_event_and_field_once()
    {
        Assert.Equal(
            "line 6 (event_id 80b8): payload.user_id: is required by video.play.started 1.0",
            Formatting.Rejection("line 6", "80b8", "payload.user_id", "payload.user_id: is required by video.play.started 1.0"));
        Assert.Equal(
            "index 2: timestamp: is required",
            Formatting.Rejection("index 2", null, "timestamp", "is required"));
    }

    [Fact]
    public void Rejection_drops_the_parsers_own_line_and_position()
    {
        var text = Formatting.Rejection("line 2", null, "event",
            "line 2: malformed JSON: There is an open JSON object. LineNumber: 0 | BytePositionInLine: 61 (line 1, byte 62)");
        Assert.Equal("line 2: event: malformed JSON: There is an open JSON object. (byte 62)", text);
    }

    [Fact]
    public void Body_errors_lose_only_the_duplicate_position() =>
        Assert.Equal(
            "malformed JSON: reached end of data. (line 2, byte 1)",
            Formatting.CleanBodyError("malformed JSON: reached end of data. LineNumber: 1 | BytePositionInLine: 0 (line 2, byte 1)"));
}
