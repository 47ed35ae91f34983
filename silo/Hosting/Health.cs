using System.Text.Json;
using Azure.Storage.Blobs;
using Keystone.Topics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Keystone.Storage;

namespace Keystone.Silo.Hosting;

/// <summary>Ready when a grain call round-trips through the cluster.</summary>
internal sealed class ClusterHealthCheck(IClusterClient cluster) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo().WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            return HealthCheckResult.Healthy($"{info.Partitions} partitions on {info.StreamProvider} streams");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"the cluster did not answer: {e.Message}");
        }
    }
}

/// <summary>Ready when the state storage answers (silo role only; a gateway holds no state).</summary>
internal sealed class StorageHealthCheck(IOptions<StorageOptions> storage, IConfiguration configuration, IServiceProvider services) : IHealthCheck
{
    private BlobServiceClient? _client;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var role = configuration.GetValue(KeystoneHostOptions.Section + ":Role", HostRole.Silo);
        if (role != HostRole.Silo) return HealthCheckResult.Healthy("gateway role: no state storage");
        try
        {
            var options = new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(3) } };
            _client ??= new BlobServiceClient(storage.Value.ConnectionString, services.GetService<StorageRequests>()?.Attach(options, "blob") ?? options);
            var container = _client.GetBlobContainerClient(storage.Value.Container);
            await container.ExistsAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            return HealthCheckResult.Healthy($"blob container '{storage.Value.Container}' reachable");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"state storage unreachable: {e.Message}");
        }
    }
}

internal static class HealthResponses
{
    public static Task Write(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        };
        return http.Response.WriteAsync(JsonSerializer.Serialize(body));
    }
}
