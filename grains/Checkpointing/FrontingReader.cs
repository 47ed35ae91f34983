using Keystone.Ingest;

namespace Keystone.Checkpointing;

/// <summary>
/// A router's place in its fronting log: the high-water mark of positions routed. Replay is deterministic (positions
/// are dense and ordered), so a message at or below the mark is a repeat and is dropped, and a message beyond the
/// next position means the positions in between are read from the log and routed first. That one rule covers a
/// restart (the mark starts at the last completed checkpoint's position) and a message that reached the log but
/// never the stream. Messages without a position (no log) pass through.
/// </summary>
public sealed class FrontingReader(IFrontingLog log, int partition, long covered)
{
    /// <summary>Messages replayed together, as the stream would deliver them.</summary>
    public const int ReplayChunk = 16;

    public long Position { get; private set; } = covered;

    /// <summary>Events read back from the log and routed.</summary>
    public long Replayed { get; private set; }

    /// <summary>Events dropped as repeats of positions already routed.</summary>
    public long Repeats { get; private set; }

    /// <summary>Routes a delivery: repeats dropped, gaps filled from the log, everything in position order.</summary>
    public async Task DeliverAsync(IReadOnlyList<EventBatch> items, Func<IReadOnlyList<EventBatch>, Task> route)
    {
        var run = new List<EventBatch>(items.Count);
        var expected = Position + 1;
        foreach (var batch in items)
        {
            if (batch.Position == 0)
            {
                run.Add(batch);
                continue;
            }
            if (batch.Position < expected)
            {
                Repeats += batch.Count;
                continue;
            }
            if (batch.Position > expected)
            {
                await Route(run, route);
                run = [];
                await CatchUpAsync(batch.Position - 1, route);
            }
            run.Add(batch);
            expected = batch.Position + 1;
        }
        await Route(run, route);
    }

    /// <summary>Routes what the log holds after <see cref="Position"/> up to <paramref name="to"/>. Positions that
    /// never reached the log (a write that failed) are passed over.</summary>
    public async Task CatchUpAsync(long to, Func<IReadOnlyList<EventBatch>, Task> route)
    {
        if (to <= Position) return;
        var messages = await log.ReadAsync(partition, Position + 1, to);
        foreach (var chunk in messages.Chunk(ReplayChunk))
        {
            await Route(chunk, route);
            Replayed += chunk.Sum(m => m.Count);
        }
        Position = Math.Max(Position, to);
    }

    // The mark moves only once routing succeeded: a failed delivery comes again and is not taken for a repeat.
    private async Task Route(IReadOnlyList<EventBatch> batches, Func<IReadOnlyList<EventBatch>, Task> route)
    {
        if (batches.Count == 0) return;
        await route(batches);
        foreach (var b in batches) Position = Math.Max(Position, b.Position);
    }
}
