using System.Net;
using Keystone.Silo.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Keystone.UnitTests.Silo;

// The pod variables are process-wide: these tests share one collection so nothing else reads them half-set.
[CollectionDefinition(nameof(PodEnvironment), DisableParallelization = true)]
public sealed class PodEnvironment;

[Collection(nameof(PodEnvironment))]
public class KubernetesHostingTests
{
    private static IHost Build(params (string Key, string? Value)[] settings) => Build(out _, settings);

    private static IHost Build(out IServiceCollection services, params (string Key, string? Value)[] settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleans(silo => SiloSetup.ConfigureSilo(silo, configuration, dashboard: false));
        services = builder.Services;
        return builder.Build();   // built, never started: options resolve without a cluster
    }

    private static bool HasKubernetesServices(IServiceCollection services) =>
        services.Any(d => (d.ImplementationType ?? d.ServiceType).Namespace == "Orleans.Hosting.Kubernetes");

    [Fact]
    public void Kubernetes_hosting_names_the_silo_after_its_pod_and_advertises_the_pod_ip()
    {
        Environment.SetEnvironmentVariable("POD_NAME", "keystone-silo-7d9f-abcde");
        Environment.SetEnvironmentVariable("POD_NAMESPACE", "keystone");
        Environment.SetEnvironmentVariable("POD_IP", "10.1.2.3");
        try
        {
            using var host = Build(out var services, ("Keystone:Cluster:Mode", "AzureTable"), ("Keystone:Cluster:Kubernetes", "true"),
                ("Keystone:Cluster:SiloPort", "11111"), ("Keystone:Cluster:GatewayPort", "30000"));
            Assert.Equal("keystone-silo-7d9f-abcde", host.Services.GetRequiredService<IOptions<SiloOptions>>().Value.SiloName);
            var endpoints = host.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
            Assert.Equal(IPAddress.Parse("10.1.2.3"), endpoints.AdvertisedIPAddress);
            Assert.Equal(new IPEndPoint(IPAddress.Any, 11111), endpoints.SiloListeningEndpoint);
            Assert.Equal(new IPEndPoint(IPAddress.Any, 30000), endpoints.GatewayListeningEndpoint);
            Assert.True(HasKubernetesServices(services));
        }
        finally
        {
            Environment.SetEnvironmentVariable("POD_NAME", null);
            Environment.SetEnvironmentVariable("POD_NAMESPACE", null);
            Environment.SetEnvironmentVariable("POD_IP", null);
        }
    }

    [Fact]
    public void Without_the_option_a_table_cluster_stays_on_loopback()
    {
        using var host = Build(out var services, ("Keystone:Cluster:Mode", "AzureTable"));
        var endpoints = host.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
        Assert.Equal(IPAddress.Loopback, endpoints.AdvertisedIPAddress);
        Assert.False(HasKubernetesServices(services));
    }
}
