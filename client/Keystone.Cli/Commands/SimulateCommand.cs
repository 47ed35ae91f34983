using System.CommandLine;
using System.Diagnostics;
using Keystone.Client.Publishing;
using Keystone.Client.Simulation;
using Microsoft.Extensions.Logging;

namespace Keystone.Cli.Commands;

/// <summary><c>keystone simulate</c>: realistic member traffic at a steady rate, through the producer SDK.</summary>
internal static class SimulateCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var rate = new Option<double>("--rate", "-r") { Description = "Events per second.", Required = true, HelpName = "events/s" };
        rate.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double>() is <= 0 or > 1_000_000) r.AddError("--rate must be greater than 0 and at most 1000000 events/s.");
        });
        var duration = DurationOptions.Create("--duration", "How long to run: 30s, 5m, 1h or plain seconds. Default: until Ctrl+C.", "-d");
        var users = PositiveInt("--users", "Simulated members.", 10_000);
        var videos = PositiveInt("--videos", "Titles in the catalogue.", 2_000);
        var seed = new Option<int?>("--seed") { Description = "Random seed, to replay the same member behaviour. Default: a new one each run (printed).", HelpName = "n" };
        var noCatalog = new Option<bool>("--no-catalog") { Description = "Do not publish the catalogue (content.added for every title) before the traffic." };
        var deadLetter = new Option<string>("--dead-letter")
        {
            Description = "File for events that cannot be delivered after the retries.",
            HelpName = "path",
            DefaultValueFactory = _ => new PublisherOptions().DeadLetterPath,
        };

        var command = new Command("simulate", "Publish realistic traffic (sign-ins, playback, ads, billing) at a steady rate.")
        {
            rate, duration, users, videos, seed, noCatalog, deadLetter,
        };
        CommandRunner.SetAction(command, globals, context => RunAsync(context, new Settings(
            context.Parse.GetValue(rate),
            context.Parse.GetValue(duration),
            context.Parse.GetValue(users),
            context.Parse.GetValue(videos),
            context.Parse.GetValue(seed) ?? Random.Shared.Next(1, 1_000_000),
            !context.Parse.GetValue(noCatalog),
            context.Parse.GetValue(deadLetter)!)));
        return command;
    }

    private sealed record Settings(double Rate, TimeSpan? Duration, int Users, int Videos, int Seed, bool Catalogue, string DeadLetterPath);

    private static async Task<int> RunAsync(CommandContext context, Settings settings)
    {
        var cancellation = context.Cancellation;
        await using var connection = await context.ConnectAsync();
        var publisherOptions = new PublisherOptions { Origin = "keystone-cli-simulate", DeadLetterPath = settings.DeadLetterPath };
        await using var publisher = KeystonePublisher.Create(connection.Client, publisherOptions, logger: connection.Loggers.CreateLogger<KeystonePublisher>());

        var simulator = new TrafficSimulator(new SimulationOptions
        {
            Users = settings.Users,
            Videos = settings.Videos,
            ConcurrentSessions = Math.Min(2_000, settings.Users),
            Seed = settings.Seed,
        });
        Console.WriteLine(
            $"Simulating {Formatting.Rate(settings.Rate)} events/s {(settings.Duration is { } d ? "for " + DurationParser.Format(d) : "until Ctrl+C")} " +
            $"against {connection.Settings.Describe()} ({Formatting.Count(settings.Users)} users, {Formatting.Count(settings.Videos)} videos, seed {settings.Seed}).");

        var clock = Stopwatch.StartNew();
        long catalogue = 0;
        long generated = 0;
        string? failure = null;
        var live = new ProgressWriter();
        try
        {
            if (settings.Catalogue)
            {
                foreach (var e in simulator.Catalogue(DateTimeOffset.UtcNow))
                {
                    await publisher.PublishAsync(e, cancellation);
                    catalogue++;
                }
                Console.WriteLine($"Catalogue: {Formatting.Count(catalogue)} titles queued.");
            }
            generated = await SimulationRunner.RunAsync(simulator, publisher, settings.Rate, settings.Duration, p => live.Write(Formatting.Progress(p)), cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Ctrl+C is how an open-ended simulation ends; what was queued is still flushed below.
        }
        catch (PublisherOverloadedException e)
        {
            failure = e.Message;
        }
        generated = Math.Max(generated, simulator.Generated);
        live.End();

        if (failure is not null) CommandRunner.Error(failure);
        var depth = publisher.Metrics.Snapshot().QueueDepth;
        if (depth > 0) Console.WriteLine($"Flushing {Formatting.Count(depth)} queued events (Ctrl+C again to quit at once; queued events would be lost)...");
        await publisher.FlushAsync(CancellationToken.None);

        var s = publisher.Metrics.Snapshot();
        var elapsed = clock.Elapsed;
        Console.WriteLine(
            $"Done in {DurationParser.Format(elapsed)}: generated {Formatting.Count(generated)}" +
            (catalogue > 0 ? $" (+{Formatting.Count(catalogue)} catalogue)" : "") +
            $", published {Formatting.Count(s.Published)}, rejected {Formatting.Count(s.Rejected)}, retried {Formatting.Count(s.Retried)}, " +
            $"dead-lettered {Formatting.Count(s.DeadLettered)}; {s.Batches} batches, average {s.AverageBatchSize:0.#} events, flush p99 {Formatting.Millis(s.FlushLatency.Percentile(0.99))}.");

        if (s.DeadLettered > 0)
        {
            CommandRunner.Error($"{Formatting.Count(s.DeadLettered)} events could not be delivered and were written to {publisher.DeadLetterPath}; re-send them with: keystone publish {publisher.DeadLetterPath}");
            return ExitCodes.Failed;
        }
        return failure is null ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static Option<int> PositiveInt(string name, string description, int defaultValue)
    {
        var option = new Option<int>(name) { Description = description, HelpName = "n", DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError($"{name} must be at least 1.");
        });
        return option;
    }
}
