using Keystone.Cli;

namespace Keystone.UnitTests.Cli;

public class DurationParserTests
{
    [Theory]
    [InlineData("30s", 30_000)]
    [InlineData("250ms", 250)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("90", 90_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0.5", 500)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("2d", 172_800_000)]
    [InlineData(" 10s ", 10_000)]
    [InlineData("10S", 10_000)]
    [InlineData("2min", 120_000)]
    [InlineData("3sec", 3_000)]
    public void Parses_accepted_forms(string text, long expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), DurationParser.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    [InlineData("abc")]
    [InlineData("5x")]
    [InlineData("s")]
    [InlineData("-5s")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("0s")]
    [InlineData("1s1m")]
    [InlineData("1m1m")]
    [InlineData("1..5s")]
    [InlineData("5 s")]
    [InlineData("1e3")]
    [InlineData("99999999999999d")]
    public void Rejects_anything_else_with_a_clear_message(string? text)
    {
        var e = Assert.Throws<FormatException>(() => DurationParser.Parse(text));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        if (!string.IsNullOrWhiteSpace(text)) Assert.Contains(text.Trim(), e.Message);
    }

    [Fact]
    public void Invalid_message_names_the_accepted_forms()
    {
        var e = Assert.Throws<FormatException>(() => DurationParser.Parse("soon"));
        Assert.Contains("30s", e.Message);
        Assert.Contains("250ms", e.Message);
    }

    [Theory]
    [InlineData(250, "250ms")]
    [InlineData(5_000, "5s")]
    [InlineData(4_200, "4.2s")]
    [InlineData(300_000, "5m")]
    [InlineData(5_400_000, "1h30m")]
    [InlineData(90_000, "1m30s")]
    public void Formats_for_people(long ms, string expected) =>
        Assert.Equal(expected, DurationParser.Format(TimeSpan.FromMilliseconds(ms)));

    [Theory]
    [InlineData("250ms")]
    [InlineData("5s")]
    [InlineData("1h30m")]
    [InlineData("1m30s")]
    public void Format_round_trips(string text) =>
        Assert.Equal(text, DurationParser.Format(DurationParser.Parse(text)));
}
