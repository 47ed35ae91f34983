using System.CommandLine;
using System.Text;
using Keystone.Client.Querying;
using Keystone.Events;
using Keystone.Topics;

namespace Keystone.Cli.Commands;

/// <summary>
/// <c>keystone tail TOPIC</c>: the newest events a topic received, as NDJSON on stdout (one envelope per line, nothing
/// else), so the output can be piped into jq or back into <c>keystone publish -</c>.
/// </summary>
internal static class TailCommand
{
    public const int MaxLimit = 10_000;

    private static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(500);

    public static Command Create(GlobalOptions globals)
    {
        var topic = new Argument<string>("TOPIC") { Description = "Topic name, e.g. analytics-playback-events (see 'keystone topics')." };
        var limit = new Option<int>("--limit", "-n") { Description = "How many of the newest events to print first.", HelpName = "n", DefaultValueFactory = _ => 10 };
        limit.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > MaxLimit) r.AddError($"--limit must be between 1 and {MaxLimit}.");
        });
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new events as they arrive, until Ctrl+C." };
        var interval = DurationOptions.Create("--interval", $"How often --follow polls. Default: {DurationParser.Format(DefaultInterval)}.", "-i");

        var command = new Command("tail", "Print the newest events delivered to a topic as NDJSON.") { topic, limit, follow, interval };
        CommandRunner.SetAction(command, globals, context => RunAsync(
            context, context.Parse.GetValue(topic)!, context.Parse.GetValue(limit), context.Parse.GetValue(follow), context.Parse.GetValue(interval) ?? DefaultInterval));
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, string topic, int limit, bool follow, TimeSpan interval)
    {
        if (!StreamNames.IsValidTopicName(topic))
            throw CliException.Usage($"'{topic}' is not a valid topic name: use 3 to 63 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit.");

        var cancellation = context.Cancellation;
        await using var connection = await context.ConnectAsync();
        var query = await KeystoneQueryClient.ConnectAsync(connection.Client);
        var known = await connection.Client.GetGrain<ITopicDirectoryGrain>(0).GetTopics();
        if (!known.ContainsKey(topic))
            throw CliException.Usage(UnknownTopic(topic, known.Keys));

        var output = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 64 * 1024) { AutoFlush = false, NewLine = "\n" };
        try
        {
            if (!follow)
            {
                Write(output, await query.GetRecentAsync(topic, limit));
                return ExitCodes.Ok;
            }

            // Reading each partition from sequence 0 gives the first page and, in the same answer, where to continue.
            var cursors = new TailCursors(query.Partitions);
            var first = await Task.WhenAll(Enumerable.Range(0, query.Partitions).Select(p => query.GetAfterAsync(topic, p, 0, limit)));
            for (var p = 0; p < first.Length; p++) cursors.Advance(p, first[p]);
            Write(output, first.SelectMany(x => x).OrderBy(e => e.DeliveredAt).ThenBy(e => e.Partition).ThenBy(e => e.Sequence).TakeLast(limit));

            var pageSize = Math.Max(limit, 1_000);
            while (!cancellation.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(interval, cancellation);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                var pages = await Task.WhenAll(Enumerable.Range(0, query.Partitions).Select(p => query.GetAfterAsync(topic, p, cursors[p], pageSize)));
                for (var p = 0; p < pages.Length; p++)
                {
                    var skipped = cursors.Advance(p, pages[p]);
                    // The tap keeps only its newest events; say so when some scrolled away between two polls.
                    if (skipped > 0) Console.Error.WriteLine($"keystone: skipped {skipped} events on partition {p} (they arrived faster than tail polls; try a shorter --interval)");
                }
                Write(output, pages.SelectMany(x => x).OrderBy(e => e.DeliveredAt).ThenBy(e => e.Partition).ThenBy(e => e.Sequence));
            }
            return ExitCodes.Ok;
        }
        catch (IOException) when (!cancellation.IsCancellationRequested)
        {
            // The reader went away (tail ... | head): that is how a pipe ends, not an error.
            return ExitCodes.Ok;
        }
        finally
        {
            try
            {
                await output.DisposeAsync();
            }
            catch (IOException)
            {
            }
        }
    }

    internal static string UnknownTopic(string topic, IEnumerable<string> known)
    {
        var names = known.Order(StringComparer.Ordinal).ToList();
        return names.Count == 0
            ? $"unknown topic '{topic}'; the cluster knows no topics yet."
            : $"unknown topic '{topic}'. Known topics: {string.Join(", ", names)}";
    }

    private static void Write(StreamWriter output, IEnumerable<TappedEvent> events)
    {
        foreach (var e in events) output.WriteLine(EventJson.Serialize(e.Event));
        output.Flush();
    }
}

/// <summary>The last sequence read from each partition of a topic, and how many events were missed between reads.</summary>
internal sealed class TailCursors(int partitions)
{
    private readonly long[] _last = new long[partitions];

    public long this[int partition] => _last[partition];

    /// <summary>Moves the partition's cursor past <paramref name="page"/> (its events after the cursor, oldest first); returns how many were skipped before it.</summary>
    public long Advance(int partition, IReadOnlyList<TappedEvent> page)
    {
        if (page.Count == 0) return 0;
        var previous = _last[partition];
        var skipped = Math.Max(0, page[0].Sequence - previous - 1);
        _last[partition] = Math.Max(previous, page[^1].Sequence);
        return skipped;
    }
}
