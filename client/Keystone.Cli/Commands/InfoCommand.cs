using System.CommandLine;
using Keystone.Client.Querying;
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
            Console.Write(RenderCluster(await connection.Client.GetClusterAsync(info.Partitions)));
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

    /// <summary>The members and, per partition, the silo its router and operators run on.</summary>
    internal static string RenderCluster(ClusterView view)
    {
        var lines = new List<string> { "", $"Members          {view.Members.Count(m => m.Status == "Active")} active of {view.Members.Count} in the membership table" };
        foreach (var m in view.Members)
            lines.Add($"  {m.Status,-13} {m.Address,-28} {m.Name,-24} started {m.StartedAt:yyyy-MM-dd HH:mm:ss}Z");
        lines.Add("");
        lines.Add("Partitions       router / activity / graph / ads operator");
        foreach (var p in view.Partitions)
            lines.Add($"  {p.Partition,3}  {p.Router ?? "-"}  {p.ActivityOperator ?? "-"}  {p.GraphOperator ?? "-"}  {p.AdsOperator ?? "-"}");
        lines.Add("");
        return string.Join('\n', lines);
    }
}
