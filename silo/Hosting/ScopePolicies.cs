using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Keystone.Silo.Hosting;

/// <summary>
/// The gateway's authorization policies, one per scope, attached to endpoint groups with
/// <c>RequireAuthorization(ScopePolicies.Admin)</c>. Endpoints without a policy (health, metrics, OpenAPI) are open.
/// </summary>
public static class ScopePolicies
{
    /// <summary>Publishing events.</summary>
    public const string Ingest = SecurityOptions.Ingest;

    /// <summary>Everything that changes the system, dead letters (raw events, personal data included) and the dashboard.</summary>
    public const string Admin = SecurityOptions.Admin;

    /// <summary>Reads and side-effect-free checks: open when <see cref="SecurityOptions.OpenReads"/>, else any valid key.</summary>
    public const string Read = "read";

    public static void AddKeystoneAccessControl(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Ingest, p => p.AddRequirements(new ScopeRequirement(SecurityOptions.Ingest)))
            .AddPolicy(Admin, p => p.AddRequirements(new ScopeRequirement(SecurityOptions.Admin)))
            .AddPolicy(Read, p => p.AddRequirements(new ScopeRequirement("")));
        services.AddSingleton<IAuthorizationHandler, ScopeAuthorizationHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, ScopeProblemResultHandler>();
    }
}

/// <summary>A key with this scope is needed; "" stands for any valid key (and for nothing at all when reads are open).</summary>
public sealed record ScopeRequirement(string Scope) : IAuthorizationRequirement;

/// <summary>Decides a <see cref="ScopeRequirement"/> from the key's scope claims and the security options.</summary>
public sealed class ScopeAuthorizationHandler(SecurityOptions options) : AuthorizationHandler<ScopeRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        if (!options.RequireKeys || (requirement.Scope.Length == 0 && options.OpenReads))
            context.Succeed(requirement);
        else if (context.User.Identities.Any(i => i.AuthenticationType == ApiKeyAuthenticationHandler.SchemeName && i.IsAuthenticated)
                 && ApiKeyPolicy.Allows(context.User.FindAll(ApiKeyAuthenticationHandler.ScopeClaim).Select(c => c.Value).ToList(), requirement.Scope))
            context.Succeed(requirement);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Answers a refused request with a problem that says why: no key (401, with a Basic prompt for the browser pages),
/// an unknown key (401), or a key without the scope (403).
/// </summary>
internal sealed class ScopeProblemResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded || (!authorizeResult.Challenged && !authorizeResult.Forbidden))
        {
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }
        // The strongest scope the endpoint asks for names the need: admin over ingest over any key.
        var scopes = policy.Requirements.OfType<ScopeRequirement>().Select(r => r.Scope).ToList();
        var scope = scopes.Contains(SecurityOptions.Admin) ? SecurityOptions.Admin : scopes.Contains(SecurityOptions.Ingest) ? SecurityOptions.Ingest : "";
        if (context.User.Identity is { IsAuthenticated: true, Name: { } name })
        {
            await Problem(context, StatusCodes.Status403Forbidden, $"API key '{name}' does not have the '{scope}' scope");
            return;
        }
        // The scheme's result is cached for the request: this reads it again without a second look-up.
        if ((await context.AuthenticateAsync(ApiKeyAuthenticationHandler.SchemeName)).Failure is not null)
        {
            await Problem(context, StatusCodes.Status401Unauthorized, ApiKeyAuthenticationHandler.UnknownKey);
            return;
        }
        if (context.Request.Path.StartsWithSegments("/dashboard") || context.Request.Path.StartsWithSegments("/status"))
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"Orleans.Keystone\"";
        await Problem(context, StatusCodes.Status401Unauthorized,
            $"this endpoint needs an API key{(scope.Length > 0 ? $" with the '{scope}' scope" : "")}: send it in the {SecurityOptions.Header} header");
    }

    internal static Task Problem(HttpContext context, int status, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, extensions: new Dictionary<string, object?> { ["error"] = detail }).ExecuteAsync(context);
}
