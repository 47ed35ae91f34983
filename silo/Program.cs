using Keystone.Silo.Hosting;
using Keystone.Silo.Local;
using Keystone.Routing;
using Keystone.Schemas;

try
{
    await using var host = await KeystoneHost.BuildAsync(args);
    host.App.Lifetime.ApplicationStarted.Register(() => StartupBanner.Print(host));
    await host.App.RunAsync();
    return 0;
}
catch (Exception e) when (e is KeystoneConfigurationException or RoutingRulesException or SchemaLoadException)
{
    // Configuration, rules and schema errors are the operator's to fix: say what is wrong, without a stack trace.
    Console.Error.WriteLine(e.Message);
    return 2;
}

/// <summary>Entry point type, visible to tests.</summary>
public partial class Program;
