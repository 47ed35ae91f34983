using System.Text;
using Keystone.Ads;
using Keystone.Silo.Gateway;

namespace Keystone.UnitTests.Silo;

public class CampaignSettingsParsingTests
{
    private static (CampaignSettings? Settings, string? Error) Parse(string json)
    {
        AdsEndpoints.TryParseSettings(Encoding.UTF8.GetBytes(json), out var settings, out var error);
        return (settings, error);
    }

    [Fact]
    public void A_full_body_parses()
    {
        var (s, error) = Parse("""{ "name": "Winter", "budget_micros": 5000000, "frequency_cap": { "max_impressions": 3, "window_seconds": 3600 } }""");
        Assert.Null(error);
        Assert.Equal(new CampaignSettings("Winter", 5_000_000, new FrequencyCap(3, TimeSpan.FromHours(1))), s);
        Assert.Equal(new CampaignSettings("Open", null, null), Parse("""{ "name": "Open", "budget_micros": null, "frequency_cap": null }""").Settings);
    }

    [Theory]
    [InlineData("[]", "body must be a JSON object")]
    [InlineData("{", "body is not valid JSON")]
    [InlineData("""{ "budget_micros": 1 }""", "name: required")]
    [InlineData("""{ "name": 7 }""", "name: expected string, got integer")]
    [InlineData("""{ "name": "x", "budget_micros": "lots" }""", "budget_micros: expected integer or null, got string")]
    [InlineData("""{ "name": "x", "budget_micros": 1.5 }""", "budget_micros: expected integer or null, got number")]
    [InlineData("""{ "name": "x", "budjet_micros": 1 }""", "budjet_micros: unknown field")]
    [InlineData("""{ "name": "x", "frequency_cap": 3 }""", "frequency_cap: expected object or null, got integer")]
    [InlineData("""{ "name": "x", "frequency_cap": { "max_impressions": 3 } }""", "frequency_cap.window_seconds: required")]
    [InlineData("""{ "name": "x", "frequency_cap": { "window_seconds": 60 } }""", "frequency_cap.max_impressions: required")]
    [InlineData("""{ "name": "x", "frequency_cap": { "max_impressions": "3", "window_seconds": 60 } }""", "frequency_cap.max_impressions: expected a positive integer")]
    [InlineData("""{ "name": "x", "frequency_cap": { "max": 3, "window_seconds": 60 } }""", "frequency_cap.max: unknown field")]
    public void Mistakes_are_named_precisely(string json, string expected)
    {
        var (settings, error) = Parse(json);
        Assert.Null(settings);
        Assert.StartsWith(expected, error);
    }

    [Theory]
    [InlineData("", null, 0, 0, "name: must not be empty")]
    [InlineData("x", -1L, 0, 0, "budget_micros: must not be negative, got -1")]
    [InlineData("x", null, 0, 60, "frequency_cap.max_impressions: must be at least 1, got 0")]
    [InlineData("x", null, 2, 0, "frequency_cap.window_seconds: must be between 1 and 2592000, got 0")]
    public void Values_out_of_range_are_refused(string name, long? budget, int max, int seconds, string expected)
    {
        var cap = max == 0 && seconds == 0 ? null : new FrequencyCap(max, TimeSpan.FromSeconds(seconds));
        Assert.Equal(expected, Assert.Single(CampaignSettingsRules.Problems(new CampaignSettings(name, budget, cap))));
    }
}
