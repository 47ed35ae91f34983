using Keystone.Cli;

namespace Keystone.UnitTests.Cli;

public class ClusterSettingsTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Defaults_to_the_local_silo()
    {
        var s = ClusterSettings.Resolve(null, null, null, null, null, false, Env());
        Assert.Equal(["127.0.0.1:30000"], s.Gateways);
        Assert.Null(s.AzureTableConnectionString);
        Assert.Equal("keystone", s.ClusterId);
        Assert.Equal("keystone", s.ServiceId);
        Assert.Equal(TimeSpan.FromSeconds(15), s.ConnectTimeout);
        Assert.False(s.UsesAzureTable);
    }

    [Fact]
    public void Environment_fills_in_what_the_command_line_leaves_out()
    {
        var s = ClusterSettings.Resolve(null, null, null, null, null, false, Env(
            ("KEYSTONE_GATEWAY", "10.0.0.1:30000, 10.0.0.2:30000"),
            ("KEYSTONE_CLUSTER_ID", "prod"),
            ("KEYSTONE_SERVICE_ID", "svc")));
        Assert.Equal(["10.0.0.1:30000", "10.0.0.2:30000"], s.Gateways);
        Assert.Equal("prod", s.ClusterId);
        Assert.Equal("svc", s.ServiceId);
    }

    [Fact]
    public void Command_line_wins_over_the_environment()
    {
        var s = ClusterSettings.Resolve(["127.0.0.1:30100"], null, "a", "b", TimeSpan.FromSeconds(3), true, Env(
            ("KEYSTONE_GATEWAY", "10.0.0.1:30000"),
            ("KEYSTONE_CLUSTER_ID", "prod")));
        Assert.Equal(["127.0.0.1:30100"], s.Gateways);
        Assert.Equal("a", s.ClusterId);
        Assert.Equal("b", s.ServiceId);
        Assert.Equal(TimeSpan.FromSeconds(3), s.ConnectTimeout);
        Assert.True(s.Verbose);
    }

    [Fact]
    public void Repeated_and_comma_separated_gateways_are_all_kept()
    {
        var s = ClusterSettings.Resolve(["a:1,b:2", "c:3"], null, null, null, null, false, Env());
        Assert.Equal(["a:1", "b:2", "c:3"], s.Gateways);
    }

    [Fact]
    public void Azure_table_from_the_environment_is_used_unless_a_gateway_is_given()
    {
        var env = Env(("KEYSTONE_AZURE_TABLE", "UseDevelopmentStorage=true"));
        Assert.True(ClusterSettings.Resolve(null, null, null, null, null, false, env).UsesAzureTable);
        Assert.False(ClusterSettings.Resolve(["127.0.0.1:30100"], null, null, null, null, false, env).UsesAzureTable);
        Assert.True(ClusterSettings.Resolve(["127.0.0.1:30100"], "UseDevelopmentStorage=true", null, null, null, false, Env()).UsesAzureTable);
    }

    [Fact]
    public void Describe_never_prints_the_connection_string()
    {
        var s = ClusterSettings.Resolve(null, "AccountKey=secret", "prod", null, null, false, Env());
        Assert.DoesNotContain("secret", s.Describe());
        Assert.Contains("prod", s.Describe());
        Assert.Equal("a:1, b:2", ClusterSettings.Resolve(["a:1", "b:2"], null, null, null, null, false, Env()).Describe());
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData(":30000")]
    [InlineData("host:")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("host:-1")]
    [InlineData("host:port")]
    public void Malformed_gateways_are_usage_errors(string gateway)
    {
        var e = Assert.Throws<CliException>(() => ClusterSettings.Resolve([gateway], null, null, null, null, false, Env()));
        Assert.Equal(ExitCodes.Usage, e.ExitCode);
        Assert.Contains(gateway, e.Message);
    }

    [Fact]
    public void Client_options_carry_the_resolved_values()
    {
        var o = ClusterSettings.Resolve(["127.0.0.1:30100"], null, "c", "s", null, false, Env()).ToClientOptions();
        Assert.Equal(["127.0.0.1:30100"], o.Gateways);
        Assert.Null(o.AzureTableConnectionString);
        Assert.Equal("c", o.ClusterId);
        Assert.Equal("s", o.ServiceId);
    }
}
