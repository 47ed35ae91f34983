using Keystone.Client.Hosting;

namespace Keystone.Cli;

/// <summary>Where the cluster is, resolved from the command line first, then the environment, then the local-run defaults.</summary>
internal sealed record ClusterSettings(
    IReadOnlyList<string> Gateways,
    string? AzureTableConnectionString,
    string ClusterId,
    string ServiceId,
    TimeSpan ConnectTimeout,
    bool Verbose)
{
    public const string GatewayVariable = "KEYSTONE_GATEWAY";
    public const string AzureTableVariable = "KEYSTONE_AZURE_TABLE";
    public const string ClusterIdVariable = "KEYSTONE_CLUSTER_ID";
    public const string ServiceIdVariable = "KEYSTONE_SERVICE_ID";
    public const string DefaultGateway = "127.0.0.1:30000";
    public const string DefaultId = "keystone";

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(15);

    public bool UsesAzureTable => !string.IsNullOrWhiteSpace(AzureTableConnectionString);

    /// <summary>Names the target for messages; never prints the Azure connection string, which holds an account key.</summary>
    public string Describe() => UsesAzureTable
        ? $"cluster '{ClusterId}' (Azure Table membership)"
        : string.Join(", ", Gateways);

    public KeystoneClientOptions ToClientOptions() => new()
    {
        Gateways = [.. Gateways],
        AzureTableConnectionString = UsesAzureTable ? AzureTableConnectionString : null,
        ClusterId = ClusterId,
        ServiceId = ServiceId,
    };

    /// <param name="environment">Reads an environment variable (a parameter so tests need not touch the real environment).</param>
    public static ClusterSettings Resolve(
        IReadOnlyList<string>? gateways,
        string? azureTable,
        string? clusterId,
        string? serviceId,
        TimeSpan? connectTimeout,
        bool verbose,
        Func<string, string?> environment)
    {
        var fromCommandLine = SplitGateways(gateways ?? []);
        var resolvedGateways = fromCommandLine.Count > 0 ? fromCommandLine : SplitGateways([environment(GatewayVariable) ?? ""]);
        if (resolvedGateways.Count == 0) resolvedGateways = [DefaultGateway];
        foreach (var gateway in resolvedGateways) CheckGateway(gateway);

        // An explicit --gateway says which silo to use, so it wins over Azure Table membership from the environment.
        var table = NonEmpty(azureTable) ?? (fromCommandLine.Count > 0 ? null : NonEmpty(environment(AzureTableVariable)));

        return new ClusterSettings(
            resolvedGateways,
            table,
            NonEmpty(clusterId) ?? NonEmpty(environment(ClusterIdVariable)) ?? DefaultId,
            NonEmpty(serviceId) ?? NonEmpty(environment(ServiceIdVariable)) ?? DefaultId,
            connectTimeout ?? DefaultConnectTimeout,
            verbose);
    }

    /// <summary>Accepts repeated values as well as comma-, semicolon- or space-separated lists in one value.</summary>
    internal static List<string> SplitGateways(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();

    /// <summary>Checks the host:port shape without resolving the host, so a typo is a usage error and not a network one.</summary>
    internal static void CheckGateway(string gateway)
    {
        var colon = gateway.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(gateway.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw CliException.Usage($"'{gateway}' is not a gateway endpoint; expected host:port such as {DefaultGateway}.");
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
