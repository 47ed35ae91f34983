using Keystone.Client.Hosting;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Clustering.AzureStorage;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// The Orleans client's membership-table client (the SDK's producers, the gateway role, the CLI) gives up a request a
/// network fault swallowed after <c>Keystone:Client:StorageRequestTryTimeout</c>, not the Azure SDK's 100 s: the table
/// on Azurite behind a relay that, once cut, passes no bytes and closes nothing.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClientMembershipTableTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_membership_table_request_a_network_fault_swallows_is_given_up_after_the_clients_try_timeout()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.TablePort);
        var options = new KeystoneClientOptions
        {
            AzureTableConnectionString = AzuriteProcess.BuildConnectionString(azurite.Azurite.BlobPort, azurite.Azurite.QueuePort, relay.Port),
            ClusterId = AzuriteFixture.UniqueName("client"),
            StorageRequestTryTimeout = TimeSpan.FromSeconds(1),
            StorageRequestRetries = 0,
        };
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleansClient(c => c.UseKeystoneCluster(options));
        // Built, not started: the table client is the one Orleans' gateway list provider would use.
        using var host = builder.Build();
        var table = host.Services.GetRequiredService<IOptions<AzureStorageGatewayOptions>>().Value.TableServiceClient;
        Assert.NotNull(table);

        // Whole, the relay reaches the emulator.
        await table.GetPropertiesAsync();
        relay.Cut();
        // The SDK's own answer to a try that got nothing back. With its default (100 s) the bound below ends first.
        var e = await Assert.ThrowsAnyAsync<Exception>(() => table.GetPropertiesAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.IsNotType<TimeoutException>(e);
        Assert.Contains("exceeded the configured timeout of 0:00:01", e.ToString(), StringComparison.Ordinal);
        Assert.True(relay.Swallowed > 0, "the cut swallowed nothing");
    }
}
