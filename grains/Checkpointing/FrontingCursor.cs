namespace Keystone.Checkpointing;

/// <summary>
/// A router's place in its fronting log: the high-water mark of positions routed. Replay is deterministic (positions
/// are dense and ordered), so a message at or below the mark is a repeat, and one beyond the next position means the
/// positions in between must be read from the log first: after a restart (the mark starts at the last checkpoint's
/// position) or when a message was written to the log but never reached the stream.
/// </summary>
public sealed class FrontingCursor(long position)
{
    public long Position { get; private set; } = position;

    public bool IsRepeat(long at) => at <= Position;

    /// <summary>The positions to read from the log before routing the message at <paramref name="at"/>; empty when none.</summary>
    public (long From, long To) GapBefore(long at) => (Position + 1, at - 1);

    public void Routed(long at) => Position = Math.Max(Position, at);
}
