using Orleans.Runtime;
using Orleans.Storage;

namespace Keystone.Checkpointing;

/// <summary>
/// The coordinator's durable record, and its claim on checkpoint numbers. Each number is written (with the positions
/// covered so far) before its barriers go out, under the record's version. Orleans can briefly run two activations of
/// the coordinator while the cluster's membership changes, and without the claim both sent barrier n: an operator's
/// acknowledgement of one activation's barrier n then completed the other's n at the other's, later, position, and
/// that checkpoint covered events no operator had applied yet. A replay after the next kill skipped them.
/// With the claim, every number belongs to one activation. The activation whose claim finds a newer version is stale:
/// it reads the newest record, keeps the larger of each covered position (each came from a completed checkpoint), drops
/// its pending checkpoints (acknowledgements of them are ignored from then on) and claims afresh at its next round.
/// </summary>
public sealed class CheckpointLedger
{
    private readonly IPersistentState<CheckpointCoordinatorState> _state;
    private readonly IReadOnlyCollection<string> _consumers;
    private readonly int _partitions;

    public CheckpointLedger(IPersistentState<CheckpointCoordinatorState> state, int partitions, IReadOnlyCollection<string> consumers)
    {
        _state = state;
        _partitions = partitions;
        _consumers = consumers;
        Tracker = Restore(state.State, null);
    }

    public CheckpointTracker Tracker { get; private set; }

    /// <summary>Claims found stale: another activation had written the record since this one read it.</summary>
    public int Conflicts { get; private set; }

    /// <summary>
    /// Writes the covered positions and the next checkpoint's number, then starts that checkpoint. Returns its number,
    /// or null when another activation wrote first (this one has then read the newest record).
    /// </summary>
    public async Task<Claim?> ClaimNext(CancellationToken cancellationToken = default)
    {
        var covered = Tracker.CoveredPositions();
        var next = Tracker.Started + 1;
        _state.State.Covered = covered;
        _state.State.Started = next;
        try
        {
            await _state.WriteStateAsync(cancellationToken);
        }
        catch (InconsistentStateException)
        {
            Conflicts++;
            var mine = Tracker;
            await _state.ReadStateAsync(cancellationToken);
            Tracker = Restore(_state.State, mine);
            return null;
        }
        var n = Tracker.Begin();
        if (n != next) throw new InvalidOperationException($"checkpoint {n} started, {next} claimed: a round ran concurrently with another");
        return new Claim(n, covered);
    }

    /// <param name="Checkpoint">The claimed number, whose barriers may now go out.</param>
    /// <param name="Covered">The covered positions now durable: the fronting log before them may be sealed.</param>
    public sealed record Claim(long Checkpoint, long[] Covered);

    private CheckpointTracker Restore(CheckpointCoordinatorState stored, CheckpointTracker? mine)
    {
        // A record of another layout is refused at the silo's start (PartitionLayout); its positions are not used.
        long[]? covered = stored.Covered.Length == _partitions ? [.. stored.Covered] : null;
        if (mine is not null)
        {
            covered ??= new long[_partitions];
            for (var p = 0; p < _partitions; p++) covered[p] = Math.Max(covered[p], mine.Covered(p));
        }
        return new CheckpointTracker(_partitions, _consumers, Math.Max(stored.Started, mine?.Started ?? 0), covered);
    }
}
