using System.CommandLine;
using System.CommandLine.Help;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace Keystone.Cli;

/// <summary>Everything a command needs besides its own options.</summary>
internal sealed record CommandContext(ParseResult Parse, ClusterSettings Cluster, CancellationToken Cancellation)
{
    /// <summary>Connects, turning Orleans' failures into the CLI's exit-3 message.</summary>
    public Task<ClusterConnection> ConnectAsync() => ClusterConnection.ConnectAsync(Cluster, Cancellation);
}

/// <summary>Runs commands and maps their failures to exit codes and single-line messages.</summary>
internal static class CommandRunner
{
    public static void SetAction(Command command, GlobalOptions globals, Func<CommandContext, Task<int>> body) =>
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            ClusterSettings? settings = null;
            try
            {
                settings = globals.Resolve(parseResult);
                return await body(new CommandContext(parseResult, settings, cancellationToken));
            }
            catch (CliException e)
            {
                Error(e.Message);
                if (settings?.Verbose == true && e.InnerException is not null) Console.Error.WriteLine(e.InnerException);
                return e.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                Error("interrupted.");
                return ExitCodes.Interrupted;
            }
            catch (Exception e) when (settings is not null && IsClusterFailure(e))
            {
                Error($"lost contact with the cluster at {settings.Describe()} ({ExceptionText.Reason(e)}).");
                if (settings.Verbose) Console.Error.WriteLine(e);
                return ExitCodes.Unreachable;
            }
            catch (Exception e)
            {
                Error($"unexpected error: {e.GetType().Name}: {ExceptionText.FirstLine(e.Message)}" + (settings?.Verbose == true ? "" : " (run with --verbose for details)"));
                if (settings?.Verbose == true) Console.Error.WriteLine(e);
                return ExitCodes.Failed;
            }
        });

    /// <summary>Parses and runs; parse errors are usage errors (exit code 2), reported without the full help text.</summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args, CancellationToken cancellationToken)
    {
        var parseResult = root.Parse(args);
        if (parseResult.Errors.Count > 0 && parseResult.Action is not HelpAction)
        {
            foreach (var error in parseResult.Errors) Error(error.Message);
            var command = parseResult.CommandResult.Command;
            var name = command == root ? "keystone" : $"keystone {command.Name}";
            Console.Error.WriteLine($"Run '{name} --help' for usage.");
            return ExitCodes.Usage;
        }
        // The CLI handles Ctrl+C itself (ShutdownSignal), so that commands can flush instead of being cut off after 2 s.
        return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, cancellationToken);
    }

    public static void Error(string message) => Console.Error.WriteLine($"keystone: {message}");

    internal static bool IsClusterFailure(Exception e) => e is SiloUnavailableException or OrleansMessageRejectionException
        or ConnectionFailedException or ClientNotAvailableException or GatewayTooBusyException or TimeoutException;
}
