namespace Keystone.Cli;

/// <summary>The process exit codes, so scripts can tell a data problem from a usage mistake from a missing cluster.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The command ran, but some events were rejected or dead-lettered (or something unexpected failed).</summary>
    public const int Failed = 1;

    /// <summary>Bad arguments: unknown option, missing file, invalid or unknown topic.</summary>
    public const int Usage = 2;

    /// <summary>The cluster could not be reached, or stopped answering.</summary>
    public const int Unreachable = 3;

    /// <summary>Stopped by Ctrl+C before the work was done (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}

/// <summary>An expected failure: its message is printed as one line, without a stack trace, and the process exits with <see cref="ExitCode"/>.</summary>
internal sealed class CliException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}
