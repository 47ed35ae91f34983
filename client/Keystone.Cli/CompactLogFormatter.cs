using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Keystone.Cli;

/// <summary>
/// Log lines for people at a terminal: <c>keystone: warn: KeystonePublisher: message (reason)</c>. A lost silo makes
/// Orleans log the same socket failure with a stack trace several times a second; without --verbose the reason is
/// enough.
/// </summary>
internal sealed class CompactLogFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "keystone-compact";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        textWriter.Write(Line(logEntry.LogLevel, logEntry.Category, message, logEntry.Exception));
        textWriter.Write('\n');
    }

    internal static string Line(LogLevel level, string category, string message, Exception? exception)
    {
        var name = category[(category.LastIndexOf('.') + 1)..];
        var reason = exception is null ? "" : $" ({ExceptionText.Reason(exception)})";
        return $"keystone: {Level(level)}: {name}: {ExceptionText.FirstLine(message)}{reason}";
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Critical => "critical",
        LogLevel.Error => "error",
        LogLevel.Warning => "warn",
        LogLevel.Information => "info",
        _ => "debug",
    };
}
