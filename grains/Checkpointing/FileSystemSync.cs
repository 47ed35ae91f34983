using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Keystone.Checkpointing;

/// <summary>
/// Group commit across the file log's partitions. An append is written to its partition's file and then waits here;
/// one thread of this class makes the files durable, a round at a time, and answers every append that was waiting
/// when the round began. On Linux a round is one <c>syncfs(2)</c>: one flush of the file system the log is on covers
/// every partition's file, where each append used to <c>fsync</c> its own file on a thread-pool thread (about 1,600
/// a second at 10,000 events/s over eight partitions, blocking the pool threads the grains run on;
/// docs/performance.md, "Stop 50").
/// </summary>
/// <remarks>
/// <c>syncfs</c> flushes every file of that file system, the log's and any other process's: in production, give the log
/// a volume of its own (<c>Keystone:Checkpoints:LogDirectory</c>). Where <c>syncfs</c> does not exist (not Linux) or is
/// refused as unknown, a round flushes each of its files in turn, still on this thread. A failed flush fails the
/// appends of its round (not acknowledged: the producers retry). The round logic is <see cref="Rounds"/>'s, which the
/// tests drive with a fake flush.
/// </remarks>
public sealed class FileSystemSync : IDisposable
{
    private readonly Rounds _rounds;
    private readonly Thread _thread;
    private bool _syncfsWorks = OperatingSystem.IsLinux();

    private readonly Histogram<double>? _duration;

    /// <param name="meters">The host's meters: each round's flush time and the rounds and appends, exported as
    /// <c>keystone_fronting_log_sync_*</c> (docs/monitoring.md).</param>
    public FileSystemSync(IMeterFactory? meters = null)
    {
        if (meters is not null)
        {
            var meter = meters.Create(Keystone.Pipeline.PipelineMetrics.MeterName);
            _duration = meter.CreateHistogram<double>("keystone.fronting_log.sync.duration", "ms",
                "Time of one group-commit flush of the file log (every partition's appends of the moment).");
            meter.CreateObservableCounter("keystone.fronting_log.sync.rounds", () => Counts.Rounds, "{round}", "Group-commit flushes of the file log.");
            meter.CreateObservableCounter("keystone.fronting_log.sync.appends", () => Counts.Appends, "{append}", "Appends made durable by those flushes.");
        }
        _rounds = new Rounds(Flush, (took, _) => _duration?.Record(took.TotalMilliseconds));
        _thread = new Thread(_rounds.Run) { IsBackground = true, Name = "fronting-log-sync" };
        _thread.Start();
    }

    /// <summary>Completes once everything written to <paramref name="file"/> before the call is on disk.</summary>
    public Task FlushAsync(SafeFileHandle file) => _rounds.Enqueue(file);

    /// <summary>Rounds done and the appends they made durable, since the start.</summary>
    public (long Rounds, long Appends) Counts => _rounds.Counts;

    // The meter is the host's (its factory disposes it).
    public void Dispose() => _rounds.Complete();

    internal void Flush(IReadOnlyList<SafeFileHandle> files)
    {
        if (_syncfsWorks && SyncFileSystemOf(files)) return;
        // A file closed meanwhile belongs to an append that failed already (its writer rolled the segment).
        foreach (var file in files.Distinct().Where(f => !f.IsClosed)) RandomAccess.FlushToDisk(file);
    }

    // False when syncfs is not there (the caller flushes file by file, and so does every later round).
    private bool SyncFileSystemOf(IReadOnlyList<SafeFileHandle> files)
    {
        // Any of the round's files names the file system, and a file closed meanwhile (a writer that rolled its segment
        // after a failure) is flushed by it too: the reference keeps the one used open for the call.
        var file = files.FirstOrDefault(f => !f.IsClosed) ?? throw new ObjectDisposedException("the fronting log's files", "every file of the round was closed before its flush");
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            if (syncfs((int)file.DangerousGetHandle()) == 0) return true;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != ENOSYS) throw new IOException($"syncfs of the fronting log's file system failed (errno {errno})");
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
        _syncfsWorks = false;
        return false;
    }

    private const int ENOSYS = 38;

    [DllImport("libc", SetLastError = true)]
    private static extern int syncfs(int fd);

    /// <summary>The group commit itself, with the flush given: waiters queue while a round runs, and the next round
    /// takes them all.</summary>
    internal sealed class Rounds(Action<IReadOnlyList<SafeFileHandle>> flush, Action<TimeSpan, int>? flushed = null)
    {
        private readonly object _gate = new();
        private List<(SafeFileHandle File, TaskCompletionSource Done)> _waiting = [];
        private bool _completed;
        private long _rounds;
        private long _appends;

        public (long Rounds, long Appends) Counts => (Interlocked.Read(ref _rounds), Interlocked.Read(ref _appends));

        public Task Enqueue(SafeFileHandle file)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_completed, this);
                _waiting.Add((file, done));
                Monitor.Pulse(_gate);
            }
            return done.Task;
        }

        public void Complete()
        {
            lock (_gate)
            {
                _completed = true;
                Monitor.Pulse(_gate);
            }
        }

        /// <summary>Runs rounds until <see cref="Complete"/>, finishing the appends already waiting.</summary>
        public void Run()
        {
            while (true)
            {
                List<(SafeFileHandle File, TaskCompletionSource Done)> round;
                lock (_gate)
                {
                    while (_waiting.Count == 0 && !_completed) Monitor.Wait(_gate);
                    if (_waiting.Count == 0) return;
                    (round, _waiting) = (_waiting, []);
                }
                Exception? failure = null;
                var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    flush([.. round.Select(w => w.File)]);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                flushed?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(t0), round.Count);
                Interlocked.Increment(ref _rounds);
                Interlocked.Add(ref _appends, round.Count);
                foreach (var (_, done) in round)
                    if (failure is null) done.SetResult();
                    else done.SetException(failure);
            }
        }
    }
}
