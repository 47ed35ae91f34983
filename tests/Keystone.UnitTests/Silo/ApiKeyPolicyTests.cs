using Keystone.Silo.Hosting;

namespace Keystone.UnitTests.Silo;

public class ApiKeyPolicyTests
{
    private static readonly ApiKey Ingest = new() { Name = "producer", Key = "ingest-key-0123456789", Scopes = ["ingest"] };
    private static readonly ApiKey Admin = new() { Name = "ops", Key = "admin-key-0123456789", Scopes = ["admin"] };

    private static ApiKeyPolicy Policy(bool openReads = true, bool require = true) =>
        new(new SecurityOptions { Keys = [Ingest, Admin], OpenReads = openReads, RequireKeys = require });

    [Theory]
    [InlineData("POST", "/v1/events", "ingest")]
    [InlineData("PUT", "/v1/routing/rules", "admin")]
    [InlineData("POST", "/v1/routing/rules/versions/3/rollback", "admin")]
    [InlineData("POST", "/v1/schemas/video.play.started/versions", "admin")]
    [InlineData("PUT", "/v1/ads/campaigns/c1", "admin")]
    [InlineData("POST", "/v1/dead-letters/x/replay", "admin")]
    [InlineData("GET", "/v1/dead-letters", "admin")]
    [InlineData("GET", "/dashboard", "admin")]
    [InlineData("GET", "/status", "admin")]
    [InlineData("GET", "/v1/topics", null)]
    [InlineData("GET", "/v1/ads/eligibility", null)]
    [InlineData("POST", "/v1/routing/rules/dry-run", null)]
    [InlineData("GET", "/health/ready", null)]
    [InlineData("GET", "/metrics", null)]
    public void Each_endpoint_needs_the_scope_its_effect_calls_for(string method, string path, string? scope) =>
        Assert.Equal(scope, Policy().Required(method, path));

    [Fact]
    public void Closed_reads_need_any_valid_key_and_keys_can_be_switched_off()
    {
        Assert.Equal("", Policy(openReads: false).Required("GET", "/v1/topics"));
        Assert.Null(Policy(openReads: false).Required("GET", "/health/live"));
        Assert.Null(Policy(require: false).Required("POST", "/v1/events"));
    }

    [Fact]
    public void Keys_are_found_by_their_secret_and_admin_implies_ingest()
    {
        var policy = Policy();
        Assert.Same(Ingest, policy.Find("ingest-key-0123456789"));
        Assert.Null(policy.Find("ingest-key-012345678"));
        Assert.True(ApiKeyPolicy.Allows(Admin, "ingest"));
        Assert.False(ApiKeyPolicy.Allows(Ingest, "admin"));
        Assert.True(ApiKeyPolicy.Allows(Ingest, ""));
    }

    [Fact]
    public void Configuration_mistakes_are_named()
    {
        var options = new SecurityOptions
        {
            Keys =
            [
                new ApiKey { Name = "a", Key = "short", Scopes = ["ingest"] },
                new ApiKey { Name = "a", Key = "long-enough-key-000", Scopes = ["root"] },
                new ApiKey { Name = "b", Key = "long-enough-key-000", Scopes = [] },
            ],
        };
        Assert.Equal(
            [
                "Keystone:Security:Keys:0:Key must be at least 16 characters.",
                "Keystone:Security:Keys:1:Name 'a' is used twice.",
                "Keystone:Security:Keys:1:Scopes: unknown scope 'root' (use ingest or admin).",
                "Keystone:Security:Keys:2:Key is the same as another key's.",
                "Keystone:Security:Keys:2:Scopes is empty (use ingest and/or admin).",
            ],
            options.Problems(development: false));
        Assert.Contains("Keys is empty", Assert.Single(new SecurityOptions().Problems(development: false)));
        Assert.Empty(new SecurityOptions().Problems(development: true));
        Assert.Empty(new SecurityOptions { RequireKeys = false }.Problems(development: false));
    }
}
