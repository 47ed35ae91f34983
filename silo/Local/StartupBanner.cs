using Keystone.Silo.Hosting;

namespace Keystone.Silo.Local;

/// <summary>Tells a newcomer where everything is once the process listens.</summary>
internal static class StartupBanner
{
    public static void Print(KeystoneHost.Instance host)
    {
        var config = host.App.Configuration;
        var role = config.GetValue("Keystone:Role", HostRole.Silo);
        var dashboard = config.GetValue("Keystone:Dashboard", true);
        var baseUrl = host.BaseAddress.TrimEnd('/');
        var gatewayPort = config.GetValue("Keystone:Cluster:GatewayPort", 30000);
        var lines = new List<string>
        {
            "",
            $"Orleans.Keystone is running ({role}).",
            $"  REST API        {baseUrl}/v1/events  (POST), {baseUrl}/v1/topics",
            $"  API reference   {baseUrl}/scalar",
            $"  OpenAPI         {baseUrl}/openapi/v1.json",
            $"  Health          {baseUrl}/health/ready",
            $"  Status page     {baseUrl}/status  (any user name, the admin key as password)",
            $"  Metrics, alerts {baseUrl}/metrics (Prometheus), {baseUrl}/v1/alerts",
            $"  Aggregations    {baseUrl}/v1/aggregation/operators, {baseUrl}/v1/graph/operators, {baseUrl}/v1/ads/operators, {baseUrl}/v1/dead-letters",
        };
        if (dashboard) lines.Add($"  Dashboard       {baseUrl}/dashboard  (any user name, the admin key as password)");
        foreach (var key in host.App.Services.GetRequiredService<DevelopmentKeys>().Keys)
            lines.Add($"  API key         {key.Name,-10} {key.Key}  ({string.Join(", ", key.Scopes)}; send as X-Api-Key; made up for this run)");
        if (role == HostRole.Silo) lines.Add($"  Orleans gateway 127.0.0.1:{gatewayPort}  (keystone CLI and SDK clients)");
        if (host.Azurite is { } azurite) lines.Add($"  Azurite         blob :{azurite.BlobPort}, queue :{azurite.QueuePort}, table :{azurite.TablePort}");
        if (config.GetValue("Keystone:Local:Simulate", false)) lines.Add($"  Simulator       {config.GetValue("Keystone:Local:SimulateRate", 200)} events/s (--Keystone:Local:Simulate=false to turn off)");
        lines.Add("Press Ctrl+C to stop.");
        lines.Add("");
        Console.WriteLine(string.Join(Environment.NewLine, lines));
    }
}
