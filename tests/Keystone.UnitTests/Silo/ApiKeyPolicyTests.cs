using System.Security.Claims;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Authorization;

namespace Keystone.UnitTests.Silo;

public class ApiKeyPolicyTests
{
    private static readonly ApiKey Ingest = new() { Name = "producer", Key = "ingest-key-0123456789", Scopes = ["ingest"] };
    private static readonly ApiKey Admin = new() { Name = "ops", Key = "admin-key-0123456789", Scopes = ["admin"] };

    private static ApiKeyPolicy Policy() => new(new SecurityOptions { Keys = [Ingest, Admin] });

    /// <summary>What the <c>ScopeAuthorizationHandler</c> decides for one requirement and one caller (null: no key).</summary>
    private static async Task<bool> Allowed(string policy, ApiKey? caller, bool openReads = true, bool require = true)
    {
        var identity = caller is null
            ? new ClaimsIdentity()
            : new ClaimsIdentity([new Claim(ClaimTypes.Name, caller.Name), .. caller.Scopes.Select(s => new Claim(ApiKeyAuthenticationHandler.ScopeClaim, s))], ApiKeyAuthenticationHandler.SchemeName);
        var requirement = new ScopeRequirement(policy == ScopePolicies.Read ? "" : policy);
        var context = new AuthorizationHandlerContext([requirement], new ClaimsPrincipal(identity), null);
        await new ScopeAuthorizationHandler(new SecurityOptions { Keys = [Ingest, Admin], OpenReads = openReads, RequireKeys = require }).HandleAsync(context);
        return context.HasSucceeded;
    }

    // Which endpoint carries which policy is asserted on the real port (AccessControlTests); this is the decision.
    [Theory]
    [InlineData(ScopePolicies.Ingest, null, false)]
    [InlineData(ScopePolicies.Ingest, "producer", true)]
    [InlineData(ScopePolicies.Ingest, "ops", true)]
    [InlineData(ScopePolicies.Admin, null, false)]
    [InlineData(ScopePolicies.Admin, "producer", false)]
    [InlineData(ScopePolicies.Admin, "ops", true)]
    [InlineData(ScopePolicies.Read, null, true)]
    [InlineData(ScopePolicies.Read, "producer", true)]
    public async Task Each_policy_needs_the_scope_its_effect_calls_for(string policy, string? caller, bool allowed) =>
        Assert.Equal(allowed, await Allowed(policy, caller switch { "producer" => Ingest, "ops" => Admin, _ => null }));

    [Fact]
    public async Task Closed_reads_need_any_valid_key_and_keys_can_be_switched_off()
    {
        Assert.False(await Allowed(ScopePolicies.Read, null, openReads: false));
        Assert.True(await Allowed(ScopePolicies.Read, Ingest, openReads: false));
        Assert.True(await Allowed(ScopePolicies.Ingest, null, require: false));
        Assert.True(await Allowed(ScopePolicies.Admin, null, require: false));
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
