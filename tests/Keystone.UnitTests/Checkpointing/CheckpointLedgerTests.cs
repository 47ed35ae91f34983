using Keystone.Checkpointing;
using Orleans.Runtime;
using Orleans.Storage;

namespace Keystone.UnitTests.Checkpointing;

public sealed class CheckpointLedgerTests
{
    private static readonly string[] Consumers = ["activity", "archive"];

    // One stored record, versioned as the snapshot storage versions it: a write with a stale version fails.
    private sealed class Record
    {
        public long Version;
        public long Started;
        public long[] Covered = [];
        public bool Unreachable;
    }

    // One activation's view of the record.
    private sealed class Activation(Record record) : IPersistentState<CheckpointCoordinatorState>
    {
        public CheckpointCoordinatorState State { get; set; } = new();
        public string? Etag { get; set; }
        public bool RecordExists => Etag is not null;

        public Task ReadStateAsync()
        {
            State = new CheckpointCoordinatorState { Started = record.Started, Covered = [.. record.Covered] };
            Etag = record.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Task.CompletedTask;
        }

        public Task WriteStateAsync()
        {
            if (record.Unreachable) throw new IOException("storage unreachable");
            var expected = Etag is null ? 0 : long.Parse(Etag, System.Globalization.CultureInfo.InvariantCulture);
            if (expected != record.Version) throw new InconsistentStateException($"at version {record.Version}, expected {expected}", record.Version.ToString(), Etag);
            record.Version++;
            record.Started = State.Started;
            record.Covered = [.. State.Covered];
            Etag = record.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Task.CompletedTask;
        }

        public Task ClearStateAsync() => throw new NotSupportedException();
        public Task ReadStateAsync(CancellationToken cancellationToken) => ReadStateAsync();
        public Task WriteStateAsync(CancellationToken cancellationToken) => WriteStateAsync();
        public Task ClearStateAsync(CancellationToken cancellationToken) => ClearStateAsync();
    }

    private static async Task<CheckpointLedger> Activate(Record record, int partitions)
    {
        var activation = new Activation(record);
        await activation.ReadStateAsync();
        return new CheckpointLedger(activation, partitions, Consumers);
    }

    private static void Complete(CheckpointTracker tracker, long n, int partition, long position)
    {
        tracker.Injected(n, partition, position);
        foreach (var c in Consumers) tracker.Acknowledged(n, partition, c);
    }

    [Fact]
    public async Task Two_activations_of_the_coordinator_never_send_barriers_of_the_same_number()
    {
        var record = new Record();
        var a = await Activate(record, 1);
        var b = await Activate(record, 1);

        var claimed = new List<long>();
        for (var round = 0; round < 6; round++)
        {
            foreach (var ledger in new[] { a, b })
                if (await ledger.ClaimNext() is { } claim) claimed.Add(claim.Checkpoint);
        }

        Assert.Equal(claimed.Distinct().Count(), claimed.Count);
        Assert.True(claimed.Count >= 6, $"only {claimed.Count} claims went through");
        Assert.True(a.Conflicts + b.Conflicts > 0);
        Assert.Equal(claimed.Max(), record.Started);
    }

    [Fact]
    public async Task An_acknowledgement_of_one_activations_barrier_does_not_complete_the_others_checkpoint()
    {
        var record = new Record();
        var a = await Activate(record, 1);
        var b = await Activate(record, 1);

        // A claims its checkpoint and the router puts its barrier after position 40. B, the stale activation, cannot
        // claim the same number; without the claim it would have started it too, with its barrier after position 90.
        var fromA = await a.ClaimNext();
        Assert.NotNull(fromA);
        Assert.Null(await b.ClaimNext());
        a.Tracker.Injected(fromA.Checkpoint, 0, 40);

        // The operators saw A's barrier, checkpointed up to position 40, and their acknowledgements reach B.
        foreach (var c in Consumers) Assert.False(b.Tracker.Acknowledged(fromA.Checkpoint, 0, c));
        Assert.Equal(0, b.Tracker.Covered(0));

        // B's own next checkpoint has a new number and completes at its own position.
        var fromB = await b.ClaimNext();
        Assert.NotNull(fromB);
        Assert.True(fromB.Checkpoint > fromA.Checkpoint);
        Complete(b.Tracker, fromB.Checkpoint, 0, 90);
        Assert.Equal(90, b.Tracker.Covered(0));
    }

    [Fact]
    public async Task A_stale_activation_keeps_the_larger_of_each_covered_position_and_writes_it_at_its_next_claim()
    {
        var record = new Record();
        var a = await Activate(record, 2);
        var b = await Activate(record, 2);

        // B claims first and completes its checkpoint on partition 0 at 50, in memory only so far.
        var fromB = (await b.ClaimNext())!.Checkpoint;
        Complete(b.Tracker, fromB, 0, 50);

        // A finds B's claim, reads it, and goes on: its own checkpoint completes at 30 and 70, and is written.
        Assert.Null(await a.ClaimNext());
        var fromA = (await a.ClaimNext())!.Checkpoint;
        Complete(a.Tracker, fromA, 0, 30);
        Complete(a.Tracker, fromA, 1, 70);
        var written = await a.ClaimNext();
        Assert.Equal([30L, 70L], written!.Covered);

        // B's next claim finds A's record: it keeps 50 (its own completed checkpoint) and takes 70 from A.
        Assert.Null(await b.ClaimNext());
        Assert.Equal([50L, 70L], b.Tracker.CoveredPositions());
        Assert.Equal(record.Started, b.Tracker.Started);
        var next = await b.ClaimNext();
        Assert.Equal([50L, 70L], next!.Covered);
        Assert.Equal([50L, 70L], record.Covered);
    }

    [Fact]
    public async Task A_claim_that_fails_to_be_written_starts_nothing_and_the_next_round_claims_the_same_number()
    {
        var record = new Record();
        var ledger = await Activate(record, 1);
        record.Unreachable = true;
        await Assert.ThrowsAsync<IOException>(() => ledger.ClaimNext());
        Assert.Equal(0, ledger.Tracker.PendingCount);
        Assert.Equal(0, ledger.Tracker.Started);

        record.Unreachable = false;
        Assert.Equal(1, (await ledger.ClaimNext())!.Checkpoint);
    }
}
