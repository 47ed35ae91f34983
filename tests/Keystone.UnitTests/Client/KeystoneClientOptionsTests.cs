using Keystone.Client.Hosting;

namespace Keystone.UnitTests.Client;

public class KeystoneClientOptionsTests
{
    private const string Azurite = "UseDevelopmentStorage=true";

    [Fact]
    public void The_membership_table_client_needs_a_connection_string()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new KeystoneClientOptions().CreateMembershipTableClient());
        Assert.Contains("Keystone:Client:AzureTableConnectionString", e.Message);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(301)]
    public void A_try_timeout_out_of_range_is_refused_by_name(double seconds)
    {
        var options = new KeystoneClientOptions { AzureTableConnectionString = Azurite, StorageRequestTryTimeout = TimeSpan.FromSeconds(seconds) };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => options.CreateMembershipTableClient());
        Assert.Contains("Keystone:Client:StorageRequestTryTimeout must be between 00:00:01 and 00:05:00", e.Message);
    }

    [Fact]
    public void Retries_out_of_range_are_refused_by_name()
    {
        var options = new KeystoneClientOptions { AzureTableConnectionString = Azurite, StorageRequestRetries = 11 };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => options.CreateMembershipTableClient());
        Assert.Contains("Keystone:Client:StorageRequestRetries must be between 0 and 10", e.Message);
    }
}
