namespace Keystone.Checkpointing;

/// <summary>
/// Whether a stateful operator owes its entities a replay from the last checkpoint (one lost its memory, a silo left,
/// a replay failed), and whether a replay is on its way. A debt stays until a replay that started after it has gone
/// through: no checkpoint may cover what an entity lost before that.
/// </summary>
/// <remarks>
/// A replay asked for while another is on its way is not folded into it: the one on its way may already have passed
/// the entity that lost its memory since, or reached the stale activation that lost it. The debt stays, and the next
/// checkpoint or delivery replays again once the first is done. (Before stop 57 such a request was dropped when the
/// caller had not marked the debt itself, as a silo's departure and a barrier that found lost entities did not.)
/// </remarks>
public sealed class ReplayDebt
{
    /// <summary>A replay is owed and has not started.</summary>
    public bool Owed { get; private set; }

    /// <summary>A replay runs in the background (started by <see cref="TryStart"/>, not yet <see cref="Ended"/>).</summary>
    public bool InFlight { get; private set; }

    /// <summary>Something happened that a replay from the last checkpoint must repair.</summary>
    public void Owe() => Owed = true;

    /// <summary>
    /// Asks for a background replay: true when the caller starts one now (the debt moves to it), false when one is
    /// already on its way (the debt stays, for after it).
    /// </summary>
    public bool TryStart()
    {
        if (InFlight)
        {
            Owed = true;
            return false;
        }
        Owed = false;
        InFlight = true;
        return true;
    }

    /// <summary>A replay run inline (in the caller's turn) takes the debt; <see cref="Owe"/> again if it fails.</summary>
    public void TakeInline() => Owed = false;

    /// <summary>The background replay is done; a failed one leaves the debt owed again.</summary>
    public void Ended(bool succeeded)
    {
        InFlight = false;
        if (!succeeded) Owed = true;
    }
}
