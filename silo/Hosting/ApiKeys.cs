using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;

namespace Keystone.Silo.Hosting;

/// <summary>One configured API key and what it may do.</summary>
public sealed class ApiKey
{
    public string Name { get; set; } = "";
    public string Key { get; set; } = "";

    /// <summary><c>ingest</c> (publish events) and/or <c>admin</c> (everything that changes the system; implies ingest).</summary>
    public List<string> Scopes { get; set; } = [];
}

/// <summary>Access control of the REST gateway. Section <c>Keystone:Security</c>.</summary>
public sealed class SecurityOptions
{
    public const string Section = "Keystone:Security";
    public const string Ingest = "ingest";
    public const string Admin = "admin";
    public const string Header = "X-Api-Key";

    /// <summary>Write endpoints need a key. Turn off only on a closed network; a warning says so at start.</summary>
    public bool RequireKeys { get; set; } = true;

    /// <summary>Reads (topics, stats, queries, schemas, rules) without a key. Dead letters and the dashboard always need the admin scope.</summary>
    public bool OpenReads { get; set; } = true;

    public List<ApiKey> Keys { get; set; } = [];

    /// <summary>Requests per key per minute; beyond it, 429. 0: no limit.</summary>
    [Range(0, 100_000_000)]
    public int RequestsPerMinute { get; set; } = 60_000;

    public IEnumerable<string> Problems(bool development)
    {
        if (RequireKeys && Keys.Count == 0 && !development)
            yield return $"{Section}:Keys is empty: configure at least one key (Name, Key, Scopes) or set {Section}:RequireKeys=false on a closed network.";
        var names = new HashSet<string>(StringComparer.Ordinal);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Keys.Count; i++)
        {
            var k = Keys[i];
            var where = $"{Section}:Keys:{i}";
            if (string.IsNullOrWhiteSpace(k.Name)) yield return $"{where}:Name is required.";
            else if (!names.Add(k.Name)) yield return $"{where}:Name '{k.Name}' is used twice.";
            if (k.Key.Length < 16) yield return $"{where}:Key must be at least 16 characters.";
            else if (!keys.Add(k.Key)) yield return $"{where}:Key is the same as another key's.";
            if (k.Scopes.Count == 0) yield return $"{where}:Scopes is empty (use {Ingest} and/or {Admin}).";
            foreach (var s in k.Scopes.Where(s => s is not (Ingest or Admin))) yield return $"{where}:Scopes: unknown scope '{s}' (use {Ingest} or {Admin}).";
        }
    }
}

/// <summary>Which scope a request needs, and whether a presented key has it: plain logic, tested on its own.</summary>
public sealed class ApiKeyPolicy(SecurityOptions options)
{
    private readonly (ApiKey Key, byte[] Secret)[] _secrets = [.. options.Keys.Select(k => (k, Encoding.UTF8.GetBytes(k.Key)))];

    /// <summary>The scope the request needs: null when open, "" when any valid key will do.</summary>
    public string? Required(string method, string path)
    {
        if (!options.RequireKeys) return null;
        var read = HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);
        if (path.StartsWith("/dashboard", StringComparison.OrdinalIgnoreCase) || path.Equals("/status", StringComparison.OrdinalIgnoreCase)) return SecurityOptions.Admin;
        // Dead letters hold events as they arrived, personal data included.
        if (path.StartsWith("/v1/dead-letters", StringComparison.OrdinalIgnoreCase)) return SecurityOptions.Admin;
        if (!path.StartsWith("/v1/", StringComparison.OrdinalIgnoreCase)) return null;
        if (read) return options.OpenReads ? null : "";
        if (HttpMethods.IsPost(method) && path.Equals("/v1/events", StringComparison.OrdinalIgnoreCase)) return SecurityOptions.Ingest;
        // Checking or trying rules changes nothing.
        if (path.Equals("/v1/routing/rules/validate", StringComparison.OrdinalIgnoreCase) || path.Equals("/v1/routing/rules/dry-run", StringComparison.OrdinalIgnoreCase))
            return options.OpenReads ? null : "";
        return SecurityOptions.Admin;
    }

    /// <summary>The key with this secret (compared in constant time), or null.</summary>
    public ApiKey? Find(string presented)
    {
        var bytes = Encoding.UTF8.GetBytes(presented);
        ApiKey? found = null;
        foreach (var (key, secret) in _secrets)
            if (CryptographicOperations.FixedTimeEquals(bytes, secret)) found = key;
        return found;
    }

    public static bool Allows(ApiKey key, string scope) =>
        scope.Length == 0 || key.Scopes.Contains(scope) || key.Scopes.Contains(SecurityOptions.Admin);
}

/// <summary>Checks the API key of every request that needs one, and applies the per-key rate limit.</summary>
internal sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeyPolicy policy, SecurityOptions options, TimeProvider time)
{
    private readonly Dictionary<string, (long Minute, int Count)> _usage = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public async Task InvokeAsync(HttpContext context)
    {
        var scope = policy.Required(context.Request.Method, context.Request.Path.Value ?? "/");
        if (scope is null)
        {
            await next(context);
            return;
        }
        var presented = context.Request.Headers[SecurityOptions.Header].ToString();
        var auth = context.Request.Headers.Authorization.ToString();
        if (presented.Length == 0 && auth.StartsWith("ApiKey ", StringComparison.OrdinalIgnoreCase))
            presented = auth["ApiKey ".Length..].Trim();
        // Browsers cannot send a header for the dashboard; they can answer a Basic prompt (any user, the key as password).
        if (presented.Length == 0 && auth.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            presented = BasicPassword(auth["Basic ".Length..].Trim()) ?? "";
            // Consumed here: what runs behind (the dashboard) must not try to interpret it again.
            context.Request.Headers.Authorization = default;
        }
        if (presented.Length == 0)
        {
            if (context.Request.Path.StartsWithSegments("/dashboard") || context.Request.Path.StartsWithSegments("/status")) context.Response.Headers.WWWAuthenticate = "Basic realm=\"Orleans.Keystone\"";
            await Problem(context, StatusCodes.Status401Unauthorized, $"this endpoint needs an API key{(scope.Length > 0 ? $" with the '{scope}' scope" : "")}: send it in the {SecurityOptions.Header} header");
            return;
        }
        if (policy.Find(presented) is not { } key)
        {
            await Problem(context, StatusCodes.Status401Unauthorized, "unknown API key");
            return;
        }
        if (!ApiKeyPolicy.Allows(key, scope))
        {
            await Problem(context, StatusCodes.Status403Forbidden, $"API key '{key.Name}' does not have the '{scope}' scope");
            return;
        }
        if (!WithinLimit(key.Name))
        {
            context.Response.Headers.RetryAfter = "60";
            await Problem(context, StatusCodes.Status429TooManyRequests, $"API key '{key.Name}' is over its limit of {options.RequestsPerMinute} requests a minute");
            return;
        }
        await next(context);
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

    private bool WithinLimit(string key)
    {
        if (options.RequestsPerMinute == 0) return true;
        var minute = time.GetUtcNow().ToUnixTimeSeconds() / 60;
        lock (_lock)
        {
            var (window, count) = _usage.GetValueOrDefault(key);
            count = window == minute ? count + 1 : 1;
            _usage[key] = (minute, count);
            return count <= options.RequestsPerMinute;
        }
    }

    private static Task Problem(HttpContext context, int status, string detail) =>
        Results.Problem(detail: detail, statusCode: status, extensions: new Dictionary<string, object?> { ["error"] = detail }).ExecuteAsync(context);
}
