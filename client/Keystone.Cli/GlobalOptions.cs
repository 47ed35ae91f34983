using System.CommandLine;
using System.CommandLine.Parsing;

namespace Keystone.Cli;

/// <summary>Options every command accepts (before or after the command name): where the cluster is and how loud to be.</summary>
internal sealed class GlobalOptions
{
    public Option<string[]> Gateway { get; } = new("--gateway", "-g")
    {
        Description = $"Silo gateway as host:port; repeat for several silos. Default: ${ClusterSettings.GatewayVariable}, else {ClusterSettings.DefaultGateway}.",
        HelpName = "host:port",
        Recursive = true,
    };

    public Option<string?> AzureTable { get; } = new("--azure-table")
    {
        Description = $"Find silos through Azure Table membership with this storage connection string instead of --gateway. Default: ${ClusterSettings.AzureTableVariable}.",
        HelpName = "connection-string",
        Recursive = true,
    };

    public Option<string?> ClusterId { get; } = new("--cluster-id")
    {
        Description = $"Orleans cluster id. Default: ${ClusterSettings.ClusterIdVariable}, else {ClusterSettings.DefaultId}.",
        HelpName = "id",
        Recursive = true,
    };

    public Option<string?> ServiceId { get; } = new("--service-id")
    {
        Description = $"Orleans service id. Default: ${ClusterSettings.ServiceIdVariable}, else {ClusterSettings.DefaultId}.",
        HelpName = "id",
        Recursive = true,
    };

    public Option<TimeSpan?> ConnectTimeout { get; } = DurationOptions.Create(
        "--connect-timeout", $"How long to keep trying to reach the cluster before giving up (exit code 3). Default: {DurationParser.Format(ClusterSettings.DefaultConnectTimeout)}.");

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Show Orleans and SDK logging, and stack traces of unexpected errors.",
        Recursive = true,
    };

    public GlobalOptions() => ConnectTimeout.Recursive = true;

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Gateway, AzureTable, ClusterId, ServiceId, ConnectTimeout, Verbose }) command.Options.Add(option);
    }

    public ClusterSettings Resolve(ParseResult result) => ClusterSettings.Resolve(
        result.GetValue(Gateway),
        result.GetValue(AzureTable),
        result.GetValue(ClusterId),
        result.GetValue(ServiceId),
        result.GetValue(ConnectTimeout),
        result.GetValue(Verbose),
        Environment.GetEnvironmentVariable);
}

/// <summary>Options that take a duration such as <c>500ms</c> or <c>5m</c> (see <see cref="DurationParser"/>).</summary>
internal static class DurationOptions
{
    /// <summary>
    /// A nullable option with the default applied by the caller: help would print a <see cref="TimeSpan"/> default as
    /// <c>00:00:15</c>, so the description states it in the form the user types instead.
    /// </summary>
    public static Option<TimeSpan?> Create(string name, string description, params string[] aliases) => new(name, aliases)
    {
        Description = description,
        HelpName = "duration",
        CustomParser = r => Parse(r, name),
    };

    private static TimeSpan? Parse(ArgumentResult result, string name)
    {
        if (result.Tokens.Count == 0) return null;
        try
        {
            return DurationParser.Parse(result.Tokens[0].Value);
        }
        catch (FormatException e)
        {
            result.AddError($"{name}: {e.Message}");
            return null;
        }
    }
}
