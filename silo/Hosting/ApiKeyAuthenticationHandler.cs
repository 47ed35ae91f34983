using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>
/// The <c>ApiKey</c> authentication scheme: a key in <c>X-Api-Key</c>, in <c>Authorization: ApiKey &lt;key&gt;</c>, or
/// as the password of a Basic prompt (the dashboard in a browser). A known key becomes a principal named after the key,
/// with one <see cref="ScopeClaim"/> per scope; an unknown key fails authentication; no key is no result.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyPolicy keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string ScopeClaim = "keystone:scope";
    public const string UnknownKey = "unknown API key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = Request.Headers[SecurityOptions.Header].ToString();
        var auth = Request.Headers.Authorization.ToString();
        if (presented.Length == 0 && auth.StartsWith("ApiKey ", StringComparison.OrdinalIgnoreCase))
            presented = auth["ApiKey ".Length..].Trim();
        // Browsers cannot send a header for the dashboard; they can answer a Basic prompt (any user, the key as password).
        if (presented.Length == 0 && auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            presented = BasicPassword(auth["Basic ".Length..].Trim()) ?? "";
            // Consumed here: what runs behind (the dashboard) must not try to interpret it again.
            Request.Headers.Authorization = default;
        }
        if (presented.Length == 0) return Task.FromResult(AuthenticateResult.NoResult());
        if (keys.Find(presented) is not { } key) return Task.FromResult(AuthenticateResult.Fail(UnknownKey));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, key.Name), .. key.Scopes.Select(s => new Claim(ScopeClaim, s))], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    private static string? BasicPassword(string encoded)
    {
        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? null : text[(colon + 1)..];
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
