using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Keystone.Archive;

/// <summary>
/// Runs background work (the lake's seals) on one thread of its own, at a lower CPU priority than the silo's other
/// threads, so that it takes the CPU the pipeline leaves idle and not the CPU the pipeline needs: a seal reads a log
/// segment back and compresses it, up to a few hundred milliseconds of one core, and on the thread pool it delayed the
/// grain turns queued behind it (ads at 10,000 events/s: click p99 two to three times what it was without the lake,
/// docs/performance.md, stop 43). Tasks started on it resume on it after their awaits.
/// </summary>
/// <remarks>
/// On Linux the thread's nice value is raised to <see cref="Nice"/> (any process may lower its own priority): under full
/// contention the kernel then gives it about a tenth of what a normal thread gets, so a seal slows down rather than
/// stopping, and a seal that still takes too long times out and is tried again (nothing is lost: the segment stays in
/// the log). Elsewhere the thread gets <see cref="ThreadPriority.Lowest"/>. Work queued after disposal runs on the pool.
/// </remarks>
public sealed class BackgroundScheduler : TaskScheduler, IDisposable
{
    public const int Nice = 10;

    private readonly BlockingCollection<Task> _queue = [];
    private readonly Thread _thread;

    public BackgroundScheduler(string name)
    {
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public override int MaximumConcurrencyLevel => 1;

    /// <summary>Runs <paramref name="work"/> on <paramref name="scheduler"/> (its awaits resume there too); the caller
    /// goes on on the pool, forced to yield, not on the background thread that completed the work.</summary>
    public static async Task<T> RunAsync<T>(TaskScheduler scheduler, Func<Task<T>> work, CancellationToken cancellationToken = default) =>
        await Task.Factory.StartNew(work, cancellationToken, TaskCreationOptions.DenyChildAttach, scheduler).Unwrap()
            .ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

    private void Run()
    {
        try
        {
            // A refusal (non-zero) leaves the thread at normal priority, as below.
            if (OperatingSystem.IsLinux()) _ = setpriority(PrioProcess, gettid(), Nice);
            else Thread.CurrentThread.Priority = ThreadPriority.Lowest;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or PlatformNotSupportedException)
        {
            // Runs at normal priority: slower pipeline during seals, nothing else.
        }
        foreach (var task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
    }

    protected override void QueueTask(Task task)
    {
        try
        {
            _queue.Add(task);
        }
        catch (InvalidOperationException)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Scheduler.TryExecuteTask(state.Task), (Scheduler: this, Task: task), preferLocal: false);
        }
    }

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) =>
        Thread.CurrentThread == _thread && TryExecuteTask(task);

    protected override IEnumerable<Task> GetScheduledTasks() => _queue.ToArray();

    public void Dispose() => _queue.CompleteAdding();

    private const int PrioProcess = 0;

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, int who, int prio);

    [DllImport("libc")]
    private static extern int gettid();
}
