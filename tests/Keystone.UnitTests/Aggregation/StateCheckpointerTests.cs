using Keystone.Aggregation;
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
    public async Task A_write_conflict_is_resolved_by_rereading_and_reapplying_not_by_losing_updates()
    {
        var storage = new ConflictingStorage();
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter, int>(storage, "test", metrics, NullLogger.Instance);

        // Two inputs applied in memory since the last write.
        storage.State.Applied.AddRange([1, 2]);
        checkpointer.Record(1, 1);
        checkpointer.Record(2, 1);

        await checkpointer.WriteAsync(() => { }, fresh => input => fresh.Applied.Add(input));

        // The other writer's 100 is kept, ours are re-applied on top, and one write succeeded.
        Assert.Equal([100, 1, 2], storage.Stored.Applied);
        Assert.Equal(1, storage.Reads);
        Assert.Equal(1, storage.Writes);
        Assert.False(checkpointer.Dirty);
        var (writes, events, conflicts, _) = metrics.Snapshot();
        Assert.Equal((1L, 2L, 1L), (writes, events, conflicts));
    }

    [Fact]
    public async Task Nothing_is_written_when_nothing_changed()
    {
        var storage = new ConflictingStorage { ConflictsLeft = 0 };
        using var metrics = new CheckpointMetrics();
        var checkpointer = new StateCheckpointer<Counter, int>(storage, "test", metrics, NullLogger.Instance);
        await checkpointer.WriteAsync(() => { }, _ => _ => { });
        Assert.Equal(0, storage.Writes);
    }
}
