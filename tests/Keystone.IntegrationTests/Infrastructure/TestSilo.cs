using System.Net;
using System.Net.Sockets;
using Keystone.Client.Querying;
using Keystone.Silo.Hosting;
using Keystone.Topics;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// A real Keystone host (silo + REST gateway on a real Kestrel port, or a gateway-only process) started in this
/// test process with its own ports, blob container and queues, pointed at the shared Azurite.
/// </summary>
public sealed class TestSilo : IAsyncDisposable
{
    private TestSilo(KeystoneHost.Instance host, Dictionary<string, string?> settings)
    {
        Host = host;
        Settings = settings;
        Http = new HttpClient { BaseAddress = new Uri(host.BaseAddress), Timeout = TimeSpan.FromSeconds(60) };
        if (settings.GetValueOrDefault("Keystone:Security:Keys:0:Key") is { } key) Http.DefaultRequestHeaders.Add("X-Api-Key", key);
    }

    /// <summary>Keys the test hosts are configured with (test-only values); <see cref="Http"/> sends the admin one.</summary>
    public const string AdminKey = "test-admin-key-0123456789";
    public const string IngestKey = "test-ingest-key-0123456789";

    public KeystoneHost.Instance Host { get; }
    public Dictionary<string, string?> Settings { get; }
    public HttpClient Http { get; }
    public IServiceProvider Services => Host.App.Services;
    public IClusterClient Client => Services.GetRequiredService<IClusterClient>();
    public int SiloPort => int.Parse(Settings["Keystone:Cluster:SiloPort"]!, System.Globalization.CultureInfo.InvariantCulture);
    public int GatewayPort => int.Parse(Settings["Keystone:Cluster:GatewayPort"]!, System.Globalization.CultureInfo.InvariantCulture);

    public async Task<KeystoneQueryClient> QueryAsync() => await KeystoneQueryClient.ConnectAsync(Client);

    /// <summary>Settings for a silo on fresh ports with its own state container; callers add or override entries.</summary>
    public static Dictionary<string, string?> DefaultSettings(AzuriteFixture azurite) => new()
    {
        ["Urls"] = "http://127.0.0.1:0",
        ["Keystone:Role"] = "Silo",
        ["Keystone:Dashboard"] = "false",
        ["Keystone:Storage:ConnectionString"] = azurite.ConnectionString,
        ["Keystone:Storage:Container"] = AzuriteFixture.UniqueName("state"),
        ["Keystone:Cluster:SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Keystone:Cluster:GatewayPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Keystone:Cluster:ClusterId"] = AzuriteFixture.UniqueName("cluster"),
        ["Keystone:Ingest:Partitions"] = "4",
        ["Keystone:Security:Keys:0:Name"] = "test-admin",
        ["Keystone:Security:Keys:0:Key"] = AdminKey,
        ["Keystone:Security:Keys:0:Scopes:0"] = "admin",
        ["Keystone:Security:Keys:1:Name"] = "test-ingest",
        ["Keystone:Security:Keys:1:Key"] = IngestKey,
        ["Keystone:Security:Keys:1:Scopes:0"] = "ingest",
        ["Keystone:Local:StartAzurite"] = "false",
        ["Keystone:Local:Simulate"] = "false",
        // The lake is the sealed fronting log: tests read it a second after ingest, not a minute.
        ["Keystone:Archive:SealInterval"] = "00:00:01",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Orleans"] = "Error",
    };

    /// <param name="services">Test-only services, such as a fault-injecting grain call filter.</param>
    public static async Task<TestSilo> StartAsync(Dictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        // HTTP binds port 0. The silo and gateway ports must be known before the start, so they are picked free, and
        // picked again if another process took one in between.
        for (var attempt = 1; ; attempt++)
        {
            var host = await KeystoneHost.BuildAsync(["--environment", "Testing"], c => c.AddInMemoryCollection(settings), s =>
            {
                s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(RecentWarnings.Instance);
                services?.Invoke(s);
            });
            try
            {
                await host.App.StartAsync();
                return new TestSilo(host, settings);
            }
            catch (Exception e) when (attempt < 3 && PortTaken(e))
            {
                await host.DisposeAsync();
                settings["Keystone:Cluster:SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
                settings["Keystone:Cluster:GatewayPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e)
            {
                // A start that times out says nothing of which of its storage calls stalled: these may.
                var unanswered = host.App.Services.GetService<Keystone.Storage.StorageRequests>()?.DescribeInFlight(TimeSpan.FromSeconds(1));
                await host.DisposeAsync();
                throw new InvalidOperationException(
                    $"The test silo did not start: {e.Message}; storage requests waiting over a second: {(string.IsNullOrEmpty(unanswered) ? "none" : unanswered)}; " +
                    $"warnings the in-process silos logged meanwhile: {RecentWarnings.Instance.Describe(TimeSpan.FromMinutes(2))}", e);
            }
        }
    }

    private static bool PortTaken(Exception? e) => e switch
    {
        null => false,
        SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } => true,
        AggregateException a => a.InnerExceptions.Any(PortTaken),
        _ => PortTaken(e.InnerException),
    };

    /// <summary>A port free at the time of asking; another process may take it before it is bound (see StartAsync).</summary>
    /// <summary>A port free now and never handed out before in this test run: the kernel can give the same ephemeral
    /// port to two consecutive probes, and a silo's HTTP and silo ports then collide at start.</summary>
    public static int FreePort()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            lock (HandedOut)
                if (HandedOut.Add(port)) return port;
        }
    }

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>Total events a topic's taps counted, over all partitions.</summary>
    public async Task<long> DeliveredAsync(string topic) => (await (await QueryAsync()).GetTopicAsync(topic)).Delivered;

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Host.DisposeAsync();
    }
}

public static class Eventually
{
    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> and the last observed value on timeout.</summary>
    public static async Task<T> Until<T>(Func<Task<T>> probe, Func<T, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        T last = default!;
        while (DateTime.UtcNow < deadline)
        {
            last = await probe();
            if (condition(last)) return last;
            await Task.Delay(100);
        }
        throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for {what}; last value: {last}; warnings the in-process silos logged meanwhile: {RecentWarnings.Instance.Describe(timeout + TimeSpan.FromSeconds(5))}");
    }
}
