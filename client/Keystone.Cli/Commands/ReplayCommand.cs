using System.CommandLine;
using Keystone.Archive;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.Cli.Commands;

/// <summary><c>keystone replay --from --to [--type] [--to-topic]</c>: re-publish archived events.</summary>
internal static class ReplayCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var from = new Option<string>("--from") { Description = "Start of the event-time range, ISO-8601 with an offset (inclusive).", Required = true };
        var to = new Option<string>("--to") { Description = "End of the event-time range, ISO-8601 with an offset (exclusive).", Required = true };
        var type = new Option<string?>("--type") { Description = "Only events of this type, e.g. video.play.started." };
        var topic = new Option<string?>("--to-topic") { Description = "Append to this topic instead of publishing into the pipeline's front door." };
        var command = new Command("replay", "Re-read the data-lake archive for a time range and publish the events again.") { from, to, type, topic };
        CommandRunner.SetAction(command, globals, async context =>
        {
            var request = Parse(context.Parse.GetValue(from)!, context.Parse.GetValue(to)!, context.Parse.GetValue(type), context.Parse.GetValue(topic));
            await using var connection = await context.ConnectAsync();
            var result = await connection.Client.GetGrain<IArchiveReplayGrain>(0).Replay(request);
            Console.WriteLine($"{result.Blobs} blobs, {result.Read} events read, {result.Matched} in range, {result.Published} published, {result.Refused} refused");
            return result.Refused > 0 ? ExitCodes.Failed : ExitCodes.Ok;
        });
        return command;
    }

    internal static ArchiveReplayRequest Parse(string from, string to, string? type, string? topic)
    {
        if (!EventJson.TryParseTimestamp(from, out var start)) throw CliException.Usage($"--from '{from}' is not an ISO-8601 date-time with an offset (e.g. 2026-11-27T04:00:00Z).");
        if (!EventJson.TryParseTimestamp(to, out var end)) throw CliException.Usage($"--to '{to}' is not an ISO-8601 date-time with an offset (e.g. 2026-11-27T05:00:00Z).");
        if (end <= start) throw CliException.Usage("--to must be later than --from.");
        if (topic is not null && !StreamNames.IsValidTopicName(topic)) throw CliException.Usage($"--to-topic '{topic}' is not a valid topic name.");
        return new ArchiveReplayRequest(start, end, type, topic);
    }
}
