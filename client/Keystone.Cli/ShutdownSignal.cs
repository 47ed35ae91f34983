using System.Runtime.InteropServices;

namespace Keystone.Cli;

/// <summary>
/// Ctrl+C and SIGTERM cancel <see cref="Token"/> so a command can stop producing and flush what it queued; a second
/// Ctrl+C (or SIGTERM) is left to the runtime and ends the process at once.
/// </summary>
/// <remarks>
/// One keypress or one <c>timeout</c> often delivers the signal twice (to the process and to its process group, or
/// forwarded by <c>dotnet run</c>), so repeats within <see cref="Debounce"/> of the first count as the same request.
/// </remarks>
internal sealed class ShutdownSignal : IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration? _sigterm;
    private readonly Lock _lock = new();
    private long _firstAt = -1;

    public ShutdownSignal()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        _sigterm = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = Signal());
    }

    public CancellationToken Token => _cts.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _sigterm?.Dispose();
        _cts.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e) => e.Cancel = Signal();

    // Returns whether the default action (ending the process) should be suppressed.
    private bool Signal()
    {
        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (_firstAt >= 0) return now - _firstAt < (long)Debounce.TotalMilliseconds;
            _firstAt = now;
        }
        // CancelAsync runs the token's callbacks on the thread pool, not on the signal thread, which must stay free
        // to see a second Ctrl+C while the command flushes.
        _ = _cts.CancelAsync();
        return true;
    }
}
