using System.CommandLine;
using Keystone.Client.Publishing;
using Keystone.Ingest;
using Keystone.Schemas;
using Microsoft.Extensions.Logging;

namespace Keystone.Cli.Commands;

/// <summary>
/// <c>keystone publish FILE</c>: validates a JSON array or NDJSON file (or an SDK dead-letter file, as is) with the same
/// parser the cluster uses, reports every bad record by line, and publishes the good ones through the SDK.
/// </summary>
internal static class PublishCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var file = new Argument<string>("FILE") { Description = "JSON array, NDJSON, or an SDK dead-letter file; '-' reads stdin." };
        var format = new Option<string>("--format") { Description = "Input format. auto: '[' means a JSON array, otherwise NDJSON.", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong("auto", "json", "ndjson");
        var deadLetter = new Option<string>("--dead-letter")
        {
            Description = "File for events that cannot be delivered after the retries.",
            HelpName = "path",
            DefaultValueFactory = _ => new PublisherOptions().DeadLetterPath,
        };

        var command = new Command("publish", "Validate the events in a file and publish the valid ones.") { file, format, deadLetter };
        CommandRunner.SetAction(command, globals, context => RunAsync(
            context,
            context.Parse.GetValue(file)!,
            context.Parse.GetValue(format) switch { "json" => BodyFormat.JsonArray, "ndjson" => BodyFormat.Ndjson, _ => BodyFormat.Auto },
            context.Parse.GetValue(deadLetter)!));
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, string path, BodyFormat format, string deadLetterPath)
    {
        var display = path == "-" ? "stdin" : path;
        var raw = await ReadInputAsync(path, context.Cancellation);
        var input = PublishInput.Prepare(raw, format);
        var parsed = EventBatchParser.Parse(input.Body, input.Format, SchemaRegistry.Embedded);
        if (parsed.BodyError is not null)
        {
            CommandRunner.Error($"{display}: {Formatting.CleanBodyError(parsed.BodyError)}");
            Console.WriteLine("published 0, rejected 0, dead-lettered 0");
            return ExitCodes.Failed;
        }
        foreach (var r in parsed.Rejections) Console.Error.WriteLine(Formatting.Rejection(input.Locate(r.Index), r.EventId, r.Field, r.Error));

        var localRejections = parsed.Rejections.Count;
        if (parsed.Events.Count == 0)
        {
            Console.WriteLine($"published 0, rejected {localRejections}, dead-lettered 0");
            return ExitCodes.Failed;
        }

        // Re-publishing the dead-letter file itself must not append new failures to the file being read.
        var deadLetterFull = Path.GetFullPath(deadLetterPath);
        if (path != "-" && string.Equals(Path.GetFullPath(path), deadLetterFull, StringComparison.Ordinal))
        {
            deadLetterPath = Path.Combine(Path.GetDirectoryName(deadLetterFull) ?? ".",
                $"{Path.GetFileNameWithoutExtension(deadLetterFull)}.{DateTime.UtcNow:yyyyMMdd'T'HHmmss}{Path.GetExtension(deadLetterFull)}");
            Console.Error.WriteLine($"keystone: re-publishing the dead-letter file; events that fail again go to {deadLetterPath}");
        }

        var locations = new Dictionary<Guid, string>(parsed.Events.Count);
        for (var i = 0; i < parsed.Events.Count; i++) locations.TryAdd(parsed.Events[i].EventId, input.Locate(parsed.Indexes[i]));

        await using var connection = await context.ConnectAsync();
        var options = new PublisherOptions
        {
            Origin = "keystone-cli-publish",
            DeadLetterPath = deadLetterPath,
            // A file is sent as fast as the cluster takes it; waiting for room in the queue is the point, not a failure.
            MaxBlockTime = TimeSpan.FromHours(1),
        };
        await using var publisher = KeystonePublisher.Create(connection.Client, options, logger: connection.Loggers.CreateLogger<KeystonePublisher>());
        publisher.ServerRejected += rejections =>
        {
            foreach (var r in rejections)
            {
                var location = r.EventId is not null && Guid.TryParse(r.EventId, out var id) && locations.TryGetValue(id, out var where) ? where : "?";
                Console.Error.WriteLine(Formatting.Rejection(location, r.EventId, r.Field, r.Error) + " (rejected by the cluster)");
            }
        };

        var queued = 0;
        var interrupted = false;
        try
        {
            foreach (var e in parsed.Events)
            {
                var result = await publisher.PublishAsync(e, context.Cancellation);
                if (result.IsQueued) queued++;
                else if (result.Error is { } error) Console.Error.WriteLine(Formatting.Rejection(locations[e.EventId], e.EventId.ToString(), error.Field, error.Reason));
            }
        }
        catch (OperationCanceledException) when (context.Cancellation.IsCancellationRequested)
        {
            interrupted = true;
            CommandRunner.Error($"interrupted: {Formatting.Count(parsed.Events.Count - queued)} events were not queued; flushing the {Formatting.Count(queued)} that were (Ctrl+C again to quit at once; queued events would be lost)...");
        }
        await publisher.FlushAsync(CancellationToken.None);

        var s = publisher.Metrics.Snapshot();
        Console.WriteLine($"published {s.Published}, rejected {localRejections + s.Rejected}, dead-lettered {s.DeadLettered}");
        if (s.DeadLettered > 0)
            CommandRunner.Error($"{s.DeadLettered} events could not be delivered and were written to {publisher.DeadLetterPath}; re-send them with: keystone publish {publisher.DeadLetterPath}");
        if (interrupted) return ExitCodes.Interrupted;
        return localRejections + s.Rejected + s.DeadLettered == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static async Task<byte[]> ReadInputAsync(string path, CancellationToken cancellationToken)
    {
        if (path == "-")
        {
            if (!Console.IsInputRedirected) throw CliException.Usage("FILE is '-' but stdin is a terminal; pipe events in, e.g. keystone tail TOPIC | keystone publish -");
            await using var stdin = Console.OpenStandardInput();
            using var buffer = new MemoryStream();
            await stdin.CopyToAsync(buffer, cancellationToken);
            return buffer.ToArray();
        }
        if (Directory.Exists(path)) throw CliException.Usage($"'{path}' is a directory; give a file of events.");
        if (!File.Exists(path)) throw CliException.Usage($"file '{path}' does not exist.");
        try
        {
            return await File.ReadAllBytesAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Usage($"cannot read '{path}': {e.Message}");
        }
    }
}
