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

/// <summary>The configured keys: finds one by its secret, and says whether it holds a scope. Plain logic, tested on its own.</summary>
public sealed class ApiKeyPolicy(SecurityOptions options)
{
    private readonly (ApiKey Key, byte[] Secret)[] _secrets = [.. options.Keys.Select(k => (k, Encoding.UTF8.GetBytes(k.Key)))];

    /// <summary>The key with this secret (compared in constant time), or null.</summary>
    public ApiKey? Find(string presented)
    {
        var bytes = Encoding.UTF8.GetBytes(presented);
        ApiKey? found = null;
        foreach (var (key, secret) in _secrets)
            if (CryptographicOperations.FixedTimeEquals(bytes, secret)) found = key;
        return found;
    }

    /// <summary>Scope "" means any valid key; admin implies every scope.</summary>
    public static bool Allows(ApiKey key, string scope) => Allows(key.Scopes, scope);

    public static bool Allows(IEnumerable<string> scopes, string scope) =>
        scope.Length == 0 || scopes.Contains(scope) || scopes.Contains(SecurityOptions.Admin);
}
