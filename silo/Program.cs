using Keystone.Silo.Hosting;
using Keystone.Silo.Local;

try
{
    await using var host = await KeystoneHost.BuildAsync(args);
    host.App.Lifetime.ApplicationStarted.Register(() => StartupBanner.Print(host));
    await host.App.RunAsync();
    return 0;
}
catch (Exception e) when (e is KeystoneConfigurationException or Keystone.Routing.RoutingRulesException or Keystone.Schemas.SchemaLoadException)
{
    // Configuration, rules and schema errors are the operator's to fix: say what is wrong, without a stack trace.
    Console.Error.WriteLine(e.Message);
    return 2;
}

/// <summary>Entry point type, visible to tests.</summary>
public partial class Program;
