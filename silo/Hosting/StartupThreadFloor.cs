using Microsoft.Extensions.Options;

namespace Keystone.Silo.Hosting;

/// <summary>Section <c>Keystone:Runtime</c>: the thread pool while the silo starts.</summary>
public sealed class RuntimeOptions
{
    public const string Section = "Keystone:Runtime";

    /// <summary>
    /// The thread pool's minimum worker threads for <see cref="StartupPeriod"/> after the process starts; 0 leaves the
    /// pool alone. The pool starts with one thread per core and its hill climbing adds threads slowly: on two cores,
    /// a silo's first seconds (compiling code, activating hundreds of grains) ran on two or three threads, and every
    /// short turn waited behind long ones. The quick start's catalogue burst reached its taps 300–670 ms after it was
    /// published; with 16 threads, 150–185 ms.
    /// </summary>
    public int StartupMinThreads { get; set; } = 16;

    /// <summary>How long <see cref="StartupMinThreads"/> holds; then the pool's own minimum is back. Kept short: at
    /// saturation 16 threads on two cores cost a fifth of the throughput (more threads contend for the same cores).</summary>
    public TimeSpan StartupPeriod { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<string> Problems()
    {
        if (StartupMinThreads is < 0 or > 1024) yield return $"{Section}:StartupMinThreads must be between 0 and 1024 (got {StartupMinThreads}).";
        if (StartupPeriod < TimeSpan.Zero) yield return $"{Section}:StartupPeriod must not be negative (got {StartupPeriod}).";
    }
}

/// <summary>What <see cref="StartupThreadFloor"/> changes: the process's thread pool, or a fake in tests.</summary>
public interface IThreadPoolMinimum
{
    (int Worker, int Io) Get();
    void Set(int worker, int io);
}

internal sealed class ProcessThreadPool : IThreadPoolMinimum
{
    public (int Worker, int Io) Get()
    {
        ThreadPool.GetMinThreads(out var worker, out var io);
        return (worker, io);
    }

    public void Set(int worker, int io) => ThreadPool.SetMinThreads(worker, io);
}

/// <summary>
/// Raises the thread pool's minimum while the silo starts and puts it back after <see cref="RuntimeOptions.StartupPeriod"/>
/// (see <see cref="RuntimeOptions.StartupMinThreads"/>). Registered before Orleans, so the floor is there when the
/// silo starts activating grains.
/// </summary>
public sealed class StartupThreadFloor(IOptions<RuntimeOptions> options, IThreadPoolMinimum pool, TimeProvider time, ILogger<StartupThreadFloor> logger) : IHostedService, IDisposable
{
    private readonly Lock _lock = new();
    private (int Worker, int Io)? _before;
    private ITimer? _timer;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var before = pool.Get();
        if (o.StartupMinThreads <= before.Worker || o.StartupPeriod <= TimeSpan.Zero) return Task.CompletedTask;
        lock (_lock)
        {
            _before = before;
            pool.Set(o.StartupMinThreads, before.Io);
            _timer = time.CreateTimer(_ => Restore(), null, o.StartupPeriod, Timeout.InfiniteTimeSpan);
        }
        logger.LogInformation("Thread pool minimum {Floor} worker threads for the first {Period} s (then {Before} again)", o.StartupMinThreads, o.StartupPeriod.TotalSeconds, before.Worker);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Restore()
    {
        lock (_lock)
        {
            if (_before is not { } before) return;
            _before = null;
            // Someone else may have raised it since: leave a minimum that is not ours.
            if (pool.Get().Worker == options.Value.StartupMinThreads) pool.Set(before.Worker, before.Io);
        }
    }

    public void Dispose()
    {
        lock (_lock) _timer?.Dispose();
    }
}
