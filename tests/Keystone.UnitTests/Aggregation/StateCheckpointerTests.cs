using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Runtime;
using Orleans.Storage;

namespace Keystone.UnitTests.Aggregation;

public class StateCheckpointerTests
{
    private sealed class Counter
    {
        public List<int> Applied { get; set; } = [];
    }

    // Storage whose first write fails as if another activation had written in between (an ETag conflict).
    private sealed class ConflictingStorage : IPersistentState<Counter>
    {
        public Counter State { get; set; } = new();
        public Counter Stored { get; set; } = new() { Applied = [100] };
        public string? Etag { get; set; }
        public bool RecordExists => true;
        public int Writes { get; private set; }
        public int Reads { get; private set; }
        public int ConflictsLeft { get; set; } = 1;

        public Task ClearStateAsync() => Task.CompletedTask;
        public Task ClearStateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task ReadStateAsync()
        {
            Reads++;
            State = new Counter { Applied = [.. Stored.Applied] };
            return Task.CompletedTask;
        }

        public Task ReadStateAsync(CancellationToken cancellationToken) => ReadStateAsync();

        public Task WriteStateAsync()
        {
            if (ConflictsLeft-- > 0) throw new InconsistentStateException("etag mismatch", "stored", "ours");
            Writes++;
            Stored = new Counter { Applied = [.. State.Applied] };
            return Task.CompletedTask;
        }

        public Task WriteStateAsync(CancellationToken cancellationToken) => WriteStateAsync();
    }

    [Fact]
    public async Task A_write_conflict_is_let_through_so_the_stale_activation_deactivates_and_nothing_is_reapplied_from_memory()
    {
        var storage = new ConflictingStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter>(storage, "test", metrics, NullLogger.Instance);
        storage.State.Applied.AddRange([1, 2]);
        checkpointer.Record(1);
        checkpointer.Record(1);

        // Another activation wrote: this one's memory is stale. Orleans deactivates an activation that lets an
        // InconsistentStateException escape, and the operator replays from the log what it had applied.
        await Assert.ThrowsAsync<InconsistentStateException>(() => checkpointer.WriteAsync(() => { }));

        Assert.Equal([100], storage.Stored.Applied);
        Assert.Equal(0, storage.Reads);
        Assert.True(checkpointer.Dirty);
        Assert.Equal(2, checkpointer.PendingEvents);
        var (writes, _, conflicts, _) = metrics.Snapshot();
        Assert.Equal((0L, 1L), (writes, conflicts));
    }

    [Fact]
    public async Task Nothing_is_written_when_nothing_changed()
    {
        var storage = new ConflictingStorage { ConflictsLeft = 0 };
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter>(storage, "test", metrics, NullLogger.Instance);
        await checkpointer.WriteAsync(() => { });
        Assert.Equal(0, storage.Writes);
    }

    // Storage that snapshots the state when a write starts (as the blob provider serialises it) and finishes the write
    // only when the test says so: the shape of an interleaved checkpoint.
    // The gate counts permits: a Release that comes before the write waits for it is not lost (xUnit posts
    // continuations, so the test may release before the second write has started).
    private sealed class GatedStorage : IPersistentState<Counter>
    {
        private readonly SemaphoreSlim _gate = new(0);
        public Counter State { get; set; } = new();
        public List<List<int>> Snapshots { get; } = [];
        public int InFlight { get; private set; }
        public int MaxInFlight { get; private set; }
        public string? Etag { get; set; }
        public bool RecordExists => true;

        public void Release() => _gate.Release();

        public Task ClearStateAsync() => Task.CompletedTask;
        public Task ClearStateAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task ReadStateAsync() => Task.CompletedTask;
        public Task ReadStateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task WriteStateAsync()
        {
            Snapshots.Add([.. State.Applied]);
            MaxInFlight = Math.Max(MaxInFlight, ++InFlight);
            await _gate.WaitAsync();
            InFlight--;
        }

        public Task WriteStateAsync(CancellationToken cancellationToken) => WriteStateAsync();
    }

    [Fact]
    public async Task Inputs_recorded_while_a_write_is_in_flight_stay_pending_for_the_next_write()
    {
        var storage = new GatedStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter>(storage, "test", metrics, NullLogger.Instance);
        storage.State.Applied.Add(1);
        checkpointer.Record(1);

        var first = checkpointer.WriteAsync(() => { });
        // An interleaved delivery applies while the blob write is in flight.
        storage.State.Applied.Add(2);
        checkpointer.Record(1);
        storage.Release();
        await first;

        Assert.True(checkpointer.Dirty);
        Assert.Equal(1, checkpointer.PendingEvents);
        Assert.Equal([1], storage.Snapshots[0]);
    }

    [Fact]
    public async Task A_write_requested_during_another_waits_for_it_and_then_writes_the_rest()
    {
        var storage = new GatedStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter>(storage, "test", metrics, NullLogger.Instance);
        storage.State.Applied.Add(1);
        checkpointer.Record(1);

        var first = checkpointer.WriteAsync(() => { });
        storage.State.Applied.Add(2);
        checkpointer.Record(1);
        var second = checkpointer.WriteAsync(() => { });
        Assert.Single(storage.Snapshots);

        storage.Release();
        await first;
        storage.Release();
        await second;

        Assert.Equal(1, storage.MaxInFlight);
        Assert.Equal([[1], [1, 2]], storage.Snapshots);
        Assert.False(checkpointer.Dirty);
        Assert.Equal((2L, 2L), (metrics.Snapshot().Writes, metrics.Snapshot().Events));
    }

    // Storage that behaves as Orleans' bridge does with the snapshot provider: the write is started only after the
    // caller yields (here: until the test opens the gate), then the provider serialises.
    private sealed class YieldingStorage : IPersistentState<UserActivityState>
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public UserActivityState State { get; set; } = new();
        public UserActivityState? Written { get; private set; }
        public string? Etag { get; set; }
        public bool RecordExists => Written is not null;

        public Task ClearStateAsync() => Task.CompletedTask;
        public Task ClearStateAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task ReadStateAsync() => Task.CompletedTask;
        public Task ReadStateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task WriteStateAsync()
        {
            await Gate.Task;
            var serializer = new KeystoneStateSerializer();
            Written = serializer.Deserialize<UserActivityState>(SnapshotCapture.Serialize(serializer, State));
        }

        public Task WriteStateAsync(CancellationToken cancellationToken) => WriteStateAsync();
    }

    [Fact]
    public async Task A_delivery_applied_while_the_write_is_queued_is_written_with_its_event_ids_so_a_replay_after_a_crash_skips_it()
    {
        var storage = new YieldingStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<UserActivityState>(storage, "user", metrics, NullLogger.Instance);
        var aggregator = new UserActivityAggregator(Playback.User, new AggregationOptions(), storage.State);
        var first = Playback.Started(Playback.At("12:00:00"));
        var second = Playback.Paused(Playback.At("12:00:30"), 30_000);
        Assert.True(aggregator.Apply(first, Playback.Now, out _));
        checkpointer.Record(1);

        // The barrier's write is on its way; an interleaved delivery is applied before the provider serialises.
        var write = checkpointer.WriteAsync(aggregator.PrepareCheckpoint);
        Assert.True(aggregator.Apply(second, Playback.Now, out _));
        checkpointer.Record(1);
        storage.Gate.SetResult();
        await write;

        // The written state counts both events, and remembers both: restored after a crash, the replay of the log
        // past the barrier changes nothing.
        var written = storage.Written!;
        Assert.Equal(2, written.Totals.Events);
        var restored = new UserActivityAggregator(Playback.User, new AggregationOptions(), written);
        Assert.False(restored.Apply(first, Playback.Now, out _));
        Assert.False(restored.Apply(second, Playback.Now, out _));
        Assert.Equal(2, restored.State.Totals.Events);
    }

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    public async Task With_a_storage_that_captures_as_it_serialises_the_state_is_prepared_once_per_write(bool preparedAtSerialization, int expected)
    {
        var storage = new YieldingStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<UserActivityState>(storage, "user", metrics, NullLogger.Instance, preparedAtSerialization);
        var aggregator = new UserActivityAggregator(Playback.User, new AggregationOptions(), storage.State);
        var started = Playback.Started(Playback.At("12:00:00"));
        Assert.True(aggregator.Apply(started, Playback.Now, out _));
        checkpointer.Record(1);

        var prepared = 0;
        var write = checkpointer.WriteAsync(() => { prepared++; aggregator.PrepareCheckpoint(); });
        storage.Gate.SetResult();
        await write;

        // A campaign's preparation copies hundreds of kilobytes: the snapshot storage's capture is the one copy it
        // needs; a storage that serialises what it is given (Orleans' memory storage) needs it before the write.
        Assert.Equal(expected, prepared);
        var restored = new UserActivityAggregator(Playback.User, new AggregationOptions(), storage.Written!);
        Assert.False(restored.Apply(started, Playback.Now, out _));
        Assert.Equal(1, restored.State.Totals.Events);
    }

    [Fact]
    public async Task A_leaving_entity_writes_its_second_state_when_the_first_is_refused_and_the_refusal_comes_through()
    {
        var written = new List<string>();
        var refused = new Orleans.Storage.InconsistentStateException("activity is at version 10, this activation expected 9");

        var failure = await Assert.ThrowsAsync<Orleans.Storage.InconsistentStateException>(() => DeactivationWrite.Both(
            () => Task.FromException(refused),
            () => { written.Add("graph"); return Task.CompletedTask; }));

        Assert.Same(refused, failure);
        Assert.Equal(["graph"], written);
    }

    [Fact]
    public async Task A_leaving_entity_whose_two_writes_fail_reports_both()
    {
        var failure = await Assert.ThrowsAsync<AggregateException>(() => DeactivationWrite.Both(
            () => Task.FromException(new InvalidOperationException("first")),
            () => Task.FromException(new TimeoutException("second"))));

        Assert.Equal(["first", "second"], failure.InnerExceptions.Select(e => e.Message));
    }
}
