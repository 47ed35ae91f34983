using Keystone.Routing;

namespace Keystone.UnitTests.Routing;

public class GlobTests
{
    [Theory]
    [InlineData("video.play.started", "video.play.started", true)]
    [InlineData("video.play.started", "video.play.starte", false)]
    [InlineData("video.play.started", "Video.play.started", false)]
    [InlineData("video.play.*", "video.play.started", true)]
    [InlineData("video.play.*", "video.play.", true)]
    [InlineData("video.play.*", "video.pause", false)]
    [InlineData("*_processed", "billing.payment_processed", true)]
    [InlineData("*_processed", "billing.payment_processed.v2", false)]
    [InlineData("*", "anything at all", true)]
    [InlineData("*", "", true)]
    [InlineData("**", "x", true)]
    [InlineData("us-?", "us-1", true)]
    [InlineData("us-?", "us-", false)]
    [InlineData("us-?", "us-12", false)]
    [InlineData("?s-east-1", "us-east-1", true)]
    [InlineData("*.play.*", "video.play.started", true)]
    [InlineData("*.play.*", "video.pause.started", false)]
    [InlineData("a*b*c", "abc", true)]
    [InlineData("a*b*c", "aXXbYYc", true)]
    [InlineData("a*b*c", "aXXbYY", false)]
    [InlineData("a*b*c", "acb", false)]
    [InlineData("*a*a*a*", "banana", true)]
    [InlineData("*a*a*a*a*", "banana", false)]
    [InlineData("v?deo.*.st*ed", "video.play.started", true)]
    [InlineData("v?deo.*.st*ed", "video.play.stopping", false)]
    [InlineData("billing.*", "video.play.started", false)]
    public void Matches_shell_style(string pattern, string value, bool expected) =>
        Assert.Equal(expected, new Glob(pattern).IsMatch(value));

    [Theory]
    [InlineData("*", true)]
    [InlineData("***", true)]
    [InlineData("us-*", false)]
    [InlineData("*-1", false)]
    [InlineData("?", false)]
    [InlineData("us-east-1", false)]
    public void A_missing_attribute_only_matches_star(string pattern, bool expected) =>
        Assert.Equal(expected, new Glob(pattern).IsMatch(null));

    [Theory]
    [InlineData("*", true)]
    [InlineData("**", true)]
    [InlineData("*a", false)]
    public void MatchesEverything_only_for_pure_stars(string pattern, bool expected) =>
        Assert.Equal(expected, new Glob(pattern).MatchesEverything);

    [Theory]
    [InlineData("video.play.*")]
    [InlineData("*")]
    [InlineData("us-?")]
    public void Check_accepts_valid_patterns(string pattern) => Assert.Null(Glob.Check(pattern));

    [Theory]
    [InlineData(null, "a pattern must not be empty")]
    [InlineData("", "a pattern must not be empty")]
    [InlineData("video play", "'video play' contains whitespace or a control character")]
    [InlineData(" ", "' ' contains whitespace or a control character")]
    [InlineData("tab\there", "'tab\there' contains whitespace or a control character")]
    [InlineData("video.[ab]", "'video.[ab]' uses '[', which is not supported (only * and ? are wildcards)")]
    [InlineData("video.{a,b}", "'video.{a,b}' uses '{', which is not supported (only * and ? are wildcards)")]
    [InlineData(@"video\.play", @"'video\.play' uses '\', which is not supported (only * and ? are wildcards)")]
    public void Check_rejects_unsupported_patterns(string? pattern, string expected) =>
        Assert.Equal(expected, Glob.Check(pattern));

    [Fact]
    public void Check_rejects_overlong_patterns()
    {
        Assert.Null(Glob.Check(new string('a', 256)));
        Assert.Equal("a pattern must be at most 256 characters long", Glob.Check(new string('a', 257)));
    }

    [Fact]
    public void Constructor_refuses_an_empty_pattern() => Assert.Throws<ArgumentException>(() => new Glob(""));

    [Fact]
    public void Many_stars_against_a_long_miss_stays_fast()
    {
        // A backtracking matcher would explode here; the linear matcher answers immediately.
        var glob = new Glob("*a*a*a*a*a*a*a*a*a*a*b");
        var text = new string('a', 20_000);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(glob.IsMatch(text));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"took {watch.Elapsed}");
    }
}
