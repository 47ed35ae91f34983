using System.CommandLine;
using Keystone.Client.Querying;
using Keystone.Topics;

namespace Keystone.Cli.Commands;

/// <summary><c>keystone topics</c>: every topic the cluster knows, with delivery counts and lag.</summary>
internal static class TopicsCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("topics", "List topics with their priority, events delivered, last delivery, and lag p99 since the taps started and over the last minute.");
        CommandRunner.SetAction(command, globals, async context =>
        {
            await using var connection = await context.ConnectAsync();
            var query = await KeystoneQueryClient.ConnectAsync(connection.Client);
            var topics = await query.GetTopicsAsync();
            Console.Write(Render(topics, DateTimeOffset.UtcNow));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static string Render(IEnumerable<TopicSummary> topics, DateTimeOffset now) => Formatting.Table(
        ["TOPIC", "PRIORITY", "DELIVERED", "LAST DELIVERY", "LAG P99", "LAST MINUTE"],
        topics.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (IReadOnlyList<string>)
        [
            t.Name,
            t.Priority ?? "-",
            Formatting.Count(t.Delivered),
            Formatting.Age(t.LastDeliveryAt, now),
            Formatting.Millis(t.Lag.Percentile(0.99)),
            Formatting.Millis(t.RecentLag?.Percentile(0.99) ?? 0),
        ]),
        new HashSet<int> { 2, 4, 5 });
}
