using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// The warnings and errors the silos of this test process logged lately, for a wait that times out to say what the
/// silo was saying meanwhile: the in-process silos log to a console the test output does not show, and a failure on a
/// loaded CI machine is otherwise a bare "timed out".
/// </summary>
public sealed class RecentWarnings : ILoggerProvider
{
    public static readonly RecentWarnings Instance = new();

    private const int Kept = 200;
    private readonly ConcurrentQueue<(DateTime At, string Line)> _lines = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>The lines logged in the last <paramref name="window"/>, newest last, at most <paramref name="max"/>.</summary>
    public string Describe(TimeSpan window, int max = 20)
    {
        var since = DateTime.UtcNow - window;
        var lines = _lines.Where(l => l.At >= since).Select(l => $"{l.At:HH:mm:ss.fff} {l.Line}").TakeLast(max).ToList();
        return lines.Count == 0 ? "none" : string.Join(Environment.NewLine, lines);
    }

    private void Add(string line)
    {
        _lines.Enqueue((DateTime.UtcNow, line.Length > 600 ? line[..600] : line));
        while (_lines.Count > Kept) _lines.TryDequeue(out _);
    }

    public void Dispose()
    {
    }

    private sealed class Logger(RecentWarnings sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            sink.Add($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}");
        }
    }
}
