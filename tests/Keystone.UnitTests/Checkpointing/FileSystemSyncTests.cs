using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using Microsoft.Win32.SafeHandles;

namespace Keystone.UnitTests.Checkpointing;

/// <summary>The file log's group commit: its rounds on a fake flush, then the real one under the file log.</summary>
public sealed class FileSystemSyncTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "keystone-sync-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static SafeFileHandle File(int n) => new((nint)n, ownsHandle: false);

    /// <summary>A flush that reports each round's files and waits for the test's go.</summary>
    private sealed class GatedFlush
    {
        public readonly List<int[]> Rounds = [];
        public TaskCompletionSource Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Go = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Exception? FailNext;

        public void Flush(IReadOnlyList<SafeFileHandle> files)
        {
            lock (Rounds) Rounds.Add([.. files.Select(f => (int)f.DangerousGetHandle())]);
            Entered.TrySetResult();
            Go.Task.Wait();
            (Entered, Go) = (new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously));
            if (FailNext is { } e)
            {
                FailNext = null;
                throw e;
            }
        }
    }

    [Fact]
    public async Task Appends_that_wait_while_a_flush_runs_share_the_next_one()
    {
        var flush = new GatedFlush();
        var rounds = new FileSystemSync.Rounds(flush.Flush);
        var runner = Task.Factory.StartNew(rounds.Run, TaskCreationOptions.LongRunning);

        var first = rounds.Enqueue(File(1));
        await flush.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // Three partitions append while the first flush is on the disk: none is durable yet.
        var waiting = new[] { rounds.Enqueue(File(2)), rounds.Enqueue(File(3)), rounds.Enqueue(File(2)) };
        Assert.False(first.IsCompleted);
        Assert.All(waiting, t => Assert.False(t.IsCompleted));

        flush.Go.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        await flush.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(waiting, t => Assert.False(t.IsCompleted));
        flush.Go.SetResult();
        await Task.WhenAll(waiting).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([[1], [2, 3, 2]], flush.Rounds);
        Assert.Equal((2L, 4L), rounds.Counts);
        rounds.Complete();
        await runner.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_failed_flush_fails_the_appends_of_its_round_only()
    {
        var flush = new GatedFlush { FailNext = new IOException("the disk said no") };
        var rounds = new FileSystemSync.Rounds(flush.Flush);
        var runner = Task.Factory.StartNew(rounds.Run, TaskCreationOptions.LongRunning);

        var failed = rounds.Enqueue(File(1));
        await flush.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var next = rounds.Enqueue(File(2));
        flush.Go.SetResult();
        var e = await Assert.ThrowsAsync<IOException>(() => failed.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("the disk said no", e.Message);

        await flush.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        flush.Go.SetResult();
        await next.WaitAsync(TimeSpan.FromSeconds(10));
        rounds.Complete();
        await runner.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Completing_flushes_what_waits_and_refuses_what_comes_after()
    {
        var flush = new GatedFlush();
        var rounds = new FileSystemSync.Rounds(flush.Flush);
        var waiting = rounds.Enqueue(File(1));
        rounds.Complete();
        Assert.Throws<ObjectDisposedException>(() => { _ = rounds.Enqueue(File(2)); });

        flush.Go.SetResult();
        rounds.Run();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([[1]], flush.Rounds);
    }

    [Fact]
    public async Task A_round_whose_first_file_was_closed_meanwhile_is_flushed_through_another()
    {
        Directory.CreateDirectory(_directory);
        using var sync = new FileSystemSync();
        var closed = new FileStream(Path.Combine(_directory, "rolled.log"), FileMode.Create, FileAccess.Write);
        using var open = new FileStream(Path.Combine(_directory, "open.log"), FileMode.Create, FileAccess.Write);
        closed.Dispose();
        // One round with both, the closed one first: the flush of the file system goes through the open one.
        sync.Flush([closed.SafeFileHandle, open.SafeFileHandle]);
        await sync.FlushAsync(open.SafeFileHandle).WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static EventBatch Message(string user) => new(Guid.NewGuid(), 2, DateTimeOffset.UnixEpoch,
        [new KeystoneEvent(Guid.NewGuid(), "user.login", DateTimeOffset.UnixEpoch, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", user)), EventMetadata.Empty)]);

    [Fact]
    public async Task The_file_log_acknowledges_appends_through_the_group_commit_and_reads_them_back()
    {
        using var sync = new FileSystemSync();
        var log = new FileFrontingLog(_directory, sync);
        var writers = await Task.WhenAll(Enumerable.Range(0, 4).Select(p => log.OpenWriterAsync(p)));
        // Concurrent appends of four partitions, each acknowledged once its round has flushed.
        await Task.WhenAll(writers.Select((w, p) => w.AppendAsync([Message($"u{p}-a"), Message($"u{p}-b")])));
        await Task.WhenAll(writers.Select((w, p) => w.AppendAsync([Message($"u{p}-c")])));

        var (rounds, appends) = sync.Counts;
        Assert.Equal(8, appends);
        Assert.InRange(rounds, 1, 8);
        for (var p = 0; p < 4; p++)
        {
            var read = await new FileFrontingLog(_directory).ReadAsync(p, 1, 3);
            Assert.Equal([$"u{p}-a", $"u{p}-b", $"u{p}-c"], read.SelectMany(m => m.Events).Select(e => e.Payload.GetString("user_id")));
        }
    }
}
