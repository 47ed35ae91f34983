using System.ComponentModel.DataAnnotations;
using System.Net;
using Azure.Data.Tables;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Keystone.Client.Hosting;

/// <summary>How an external process finds the cluster. Section <c>Keystone:Client</c>.</summary>
public sealed class KeystoneClientOptions
{
    public const string Section = "Keystone:Client";

    /// <summary>Silo gateway endpoints (host:port) for static clustering. Ignored when <see cref="AzureTableConnectionString"/> is set.</summary>
    public List<string> Gateways { get; set; } = ["127.0.0.1:30000"];

    /// <summary>Azure Table membership (the silos' <c>Keystone:Cluster:ConnectionString</c>); gateways are discovered there.</summary>
    public string? AzureTableConnectionString { get; set; }

    [Required]
    public string ClusterId { get; set; } = "keystone";

    [Required]
    public string ServiceId { get; set; } = "keystone";

    /// <summary>
    /// How long one request to the membership table may go unanswered before it is given up and sent again. The Azure
    /// SDK's default is 100 s per try, so a connection a network fault swallowed held a client's start (and its view of
    /// the gateways) that long. The silos' <c>Keystone:Storage:RequestTryTimeout</c> has the same default.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan StorageRequestTryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a failed request to the membership table is sent again (the Azure SDK's default).</summary>
    [Range(0, 10)]
    public int StorageRequestRetries { get; set; } = 3;

    /// <summary>The membership table's client, with <see cref="StorageRequestTryTimeout"/> and <see cref="StorageRequestRetries"/>.</summary>
    public TableServiceClient CreateMembershipTableClient()
    {
        if (string.IsNullOrWhiteSpace(AzureTableConnectionString))
            throw new InvalidOperationException("Keystone:Client:AzureTableConnectionString is not set; the membership table needs it.");
        if (StorageRequestTryTimeout < TimeSpan.FromSeconds(1) || StorageRequestTryTimeout > TimeSpan.FromMinutes(5))
            throw new ArgumentOutOfRangeException(nameof(StorageRequestTryTimeout), StorageRequestTryTimeout,
                "Keystone:Client:StorageRequestTryTimeout must be between 00:00:01 and 00:05:00.");
        if (StorageRequestRetries is < 0 or > 10)
            throw new ArgumentOutOfRangeException(nameof(StorageRequestRetries), StorageRequestRetries,
                "Keystone:Client:StorageRequestRetries must be between 0 and 10.");
        var options = new TableClientOptions();
        options.Retry.NetworkTimeout = StorageRequestTryTimeout;
        options.Retry.MaxRetries = StorageRequestRetries;
        return new TableServiceClient(AzureTableConnectionString, options);
    }

    public IPEndPoint[] ParseGateways()
    {
        if (Gateways.Count == 0) throw new ArgumentException("Keystone:Client:Gateways is empty; give at least one silo gateway as host:port.");
        return Gateways.Select(ParseEndpoint).ToArray();
    }

    public static IPEndPoint ParseEndpoint(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
            throw new ArgumentException($"'{text}' is not a gateway endpoint; expected host:port such as 127.0.0.1:30000.");
        var host = text[..colon];
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        var addresses = Dns.GetHostAddresses(host);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new ArgumentException($"Gateway host '{host}' does not resolve.");
        return new IPEndPoint(chosen, port);
    }
}

public static class KeystoneClientBuilderExtensions
{
    /// <summary>Points an Orleans client at a Keystone cluster and makes it retry its first connection for a while.</summary>
    public static IClientBuilder UseKeystoneCluster(this IClientBuilder builder, KeystoneClientOptions options, TimeSpan? connectTimeout = null)
    {
        builder.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = options.ClusterId;
            o.ServiceId = options.ServiceId;
        });
        if (!string.IsNullOrWhiteSpace(options.AzureTableConnectionString))
        {
            var table = options.CreateMembershipTableClient();
            builder.UseAzureStorageClustering(o => o.TableServiceClient = table);
        }
        else
        {
            builder.UseStaticClustering(options.ParseGateways());
        }

        var deadline = DateTime.UtcNow + (connectTimeout ?? TimeSpan.FromSeconds(30));
        builder.UseConnectionRetryFilter(async (_, cancellationToken) =>
        {
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            return true;
        });
        return builder;
    }
}
