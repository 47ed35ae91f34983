using Keystone.Silo.Hosting;
using Keystone.Silo.Local;
using Keystone.Routing;
using Keystone.Schemas;

try
{
    await using var host = await KeystoneHost.BuildAsync(args);
    host.App.Lifetime.ApplicationStarted.Register(() => StartupBanner.Print(host));
    try
    {
        await host.App.StartAsync();
    }
    catch (Exception e) when (e is not (KeystoneConfigurationException or RoutingRulesException or SchemaLoadException or OperationCanceledException))
    {
        // A start that waited on storage in vain ends in some grain call's timeout: name what it waited on instead of
        // leaving an unhandled exception (the host has logged the details).
        var waiting = host.App.Services.GetService<Keystone.Storage.StorageRequests>()?.DescribeInFlight(TimeSpan.FromSeconds(1));
        Console.Error.WriteLine($"Keystone could not start: {e.GetBaseException().Message}");
        if (!string.IsNullOrEmpty(waiting))
            Console.Error.WriteLine($"Storage requests still waiting for an answer: {waiting}. Is the storage that Keystone:Storage:ConnectionString names answering?");
        return 1;
    }
    await host.App.WaitForShutdownAsync();
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
