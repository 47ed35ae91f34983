using System.CommandLine;
using Keystone.Topics;

namespace Keystone.Cli.Commands;

/// <summary><c>keystone info</c>: how the cluster's pipeline is set up.</summary>
internal static class InfoCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("info", "Show the pipeline's partitions, stream provider, routing rules and event types.");
        CommandRunner.SetAction(command, globals, async context =>
        {
            await using var connection = await context.ConnectAsync();
            var info = await connection.Client.GetGrain<IPipelineInfoGrain>(0).GetInfo();
            Console.Write(Render(info, connection.Settings.Describe()));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static string Render(PipelineInfo info, string cluster) => string.Join('\n',
    [
        $"Cluster          {cluster}",
        $"Partitions       {info.Partitions}",
        $"Stream provider  {info.StreamProvider}",
        $"Routing rules    {info.RuleCount} from {info.RulesOrigin} (hash {info.RulesHash})",
        $"Event types      {info.EventTypes.Count}: {string.Join(", ", info.EventTypes)}",
        "",
    ]);
}
