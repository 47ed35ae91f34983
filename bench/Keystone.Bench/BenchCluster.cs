using System.Net;
using System.Net.Sockets;
using Keystone.Client.Hosting;
using Keystone.Client.Querying;
using Keystone.LocalInfra;
using Keystone.Silo.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keystone.Bench;

/// <summary>A silo (with its REST gateway) and an external Orleans client in this process, on Azurite blob storage.</summary>
public sealed class BenchCluster : IAsyncDisposable
{
    private BenchCluster(KeystoneHost.Instance silo, IHost client, int partitions, string clusterId, IReadOnlyList<string> gateways, IReadOnlyList<KeystoneHost.Instance>? more = null)
    {
        Silo = silo;
        ClusterId = clusterId;
        Gateways = gateways;
        MoreSilos = more ?? [];
        ClientHost = client;
        Partitions = partitions;
        Http = new HttpClient { BaseAddress = new Uri(silo.BaseAddress), Timeout = TimeSpan.FromMinutes(5) };
        Http.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
    }

    // Made up per run: the benchmark's silo needs keys like any other, and no key is committed.
    private static readonly string AdminKey = "bench_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    public KeystoneHost.Instance Silo { get; }

    /// <summary>Silos beyond the first (the scale run), joined to it on loopback in this process.</summary>
    public IReadOnlyList<KeystoneHost.Instance> MoreSilos { get; }

    public IEnumerable<KeystoneHost.Instance> AllSilos => [Silo, .. MoreSilos];

    /// <summary>What an Orleans client in another process needs to join: the cluster id and the gateways (host:port).</summary>
    public string ClusterId { get; }

    public IReadOnlyList<string> Gateways { get; }
    public IHost ClientHost { get; }
    public int Partitions { get; }
    public HttpClient Http { get; }
    public IClusterClient Client => ClientHost.Services.GetRequiredService<IClusterClient>();
    public KeystoneQueryClient Query => new(Client, Partitions);

    public static async Task<BenchCluster> StartAsync(AzuriteProcess azurite, IDictionary<string, string?> overrides, int silos = 1)
    {
        var siloPort = FreePort();
        var gatewayPort = FreePort();
        var clusterId = "bench-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Keystone:Dashboard"] = "false",
            ["Keystone:Storage:ConnectionString"] = azurite.ConnectionString,
            ["Keystone:Storage:Container"] = clusterId,
            ["Keystone:Cluster:SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:ClusterId"] = clusterId,
            // The fronting log in local files, as the quick start keeps it (--Keystone:Checkpoints:FrontingLog=Blob for the blob log).
            ["Keystone:Checkpoints:LogDirectory"] = Path.Combine(Path.GetTempPath(), "keystone-bench", clusterId),
            ["Keystone:Local:StartAzurite"] = "false",
            ["Keystone:Local:Simulate"] = "false",
            // The silo's thread floor holds for its first 30 s, and a bench run starts within them: the runs measure the
            // steady state, with the pool as it is after start-up (--Keystone:Runtime:StartupMinThreads=16 to include it).
            ["Keystone:Runtime:StartupMinThreads"] = "0",
            ["Keystone:Security:Keys:0:Name"] = "bench",
            ["Keystone:Security:Keys:0:Key"] = AdminKey,
            ["Keystone:Security:Keys:0:Scopes:0"] = "admin",
            ["Keystone:Security:RequestsPerMinute"] = "0",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Orleans"] = "Error",
        };
        foreach (var (k, v) in overrides) settings[k] = v;
        var silo = await KeystoneHost.BuildAsync(["--environment", "Production"], c => c.AddInMemoryCollection(settings));
        await silo.App.StartAsync();
        // More silos: the same storage, container and fronting-log directory (silos sharing a disk), joined through the
        // first one's silo port, each with its own gateway.
        var more = new List<KeystoneHost.Instance>();
        var gateways = new List<string> { $"127.0.0.1:{gatewayPort}" };
        for (var i = 1; i < silos; i++)
        {
            var port = FreePort();
            var gateway = FreePort();
            var own = new Dictionary<string, string?>(settings)
            {
                ["Keystone:Cluster:SiloPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Keystone:Cluster:GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Keystone:Cluster:PrimarySiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            var next = await KeystoneHost.BuildAsync(["--environment", "Production"], c => c.AddInMemoryCollection(own));
            await next.App.StartAsync();
            more.Add(next);
            gateways.Add($"127.0.0.1:{gateway}");
        }

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(c => c.UseKeystoneCluster(new KeystoneClientOptions { Gateways = gateways, ClusterId = clusterId }));
        var client = builder.Build();
        await client.StartAsync();
        var partitions = silo.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Keystone.Pipeline.IngestOptions>>().Value.Partitions;
        return new BenchCluster(silo, client, partitions, clusterId, gateways, more);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await ClientHost.StopAsync();
        ClientHost.Dispose();
        // Later silos leave first, the primary last.
        foreach (var silo in MoreSilos.Reverse()) await silo.DisposeAsync();
        await Silo.DisposeAsync();
    }
}
