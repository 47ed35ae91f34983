namespace Keystone.Checkpointing;

/// <summary>
/// The entities a stateful operator handed events to since its last checkpoint, and which activation of each applied
/// them. The next barrier writes every one of them; an entity that answers from another activation than the one that
/// applied lost those events with its memory, and they must be replayed to it before any checkpoint covers them.
/// </summary>
/// <remarks>
/// An entity's activation is compared only within one checkpoint period: once a barrier has written it, what it
/// applied is durable, and a new activation after that has lost nothing. While a replay from the last checkpoint is on
/// its way, the activation is not known (<see cref="ReplayPending"/>): whichever answers next has the replay, or will.
/// </remarks>
public sealed class TouchedEntities
{
    /// <summary>The activation of an entity that a replay is on its way to.</summary>
    public static readonly Guid ReplayPending = Guid.Empty;

    // Also the pool of key strings: operators touch every entity of every delivery, and building the key string each
    // time was an object per entity and delivery.
    private readonly Dictionary<string, Guid> _applied = new(StringComparer.Ordinal);
    // The entities the next barrier writes: those touched, and those an uncovered barrier left (see NotCovered).
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);

    /// <summary>How many entities the next barrier writes.</summary>
    public int Count => _dirty.Count;

    /// <summary>The key string for <paramref name="prefix"/> + <paramref name="id"/>: the one held already if the
    /// entity was touched before, a new one otherwise.</summary>
    public string Key(ReadOnlySpan<char> prefix, string id)
    {
        var length = prefix.Length + id.Length;
        Span<char> key = length <= 256 ? stackalloc char[length] : new char[length];
        prefix.CopyTo(key);
        id.AsSpan().CopyTo(key[prefix.Length..]);
        return _applied.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(key, out var held, out _) ? held : new string(key);
    }

    /// <summary>
    /// Records that <paramref name="activation"/> of the entity applied events of this period. True when another
    /// activation applied some before it in the same period: those are lost, and a replay from the last checkpoint is
    /// owed. The new activation is the one known from then on.
    /// </summary>
    public bool Touch(string key, Guid activation)
    {
        _dirty.Add(key);
        ref var known = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_applied, key, out var existed);
        var lost = existed && known != activation && known != ReplayPending;
        known = activation;
        return lost;
    }

    /// <summary>A replay from the last checkpoint is on its way to every entity: none of them is a reason for another
    /// replay until it has answered once.</summary>
    public void ReplayOnItsWay()
    {
        foreach (var key in _applied.Keys) _applied[key] = ReplayPending;
    }

    /// <summary>Hands this period's entities to a checkpoint and starts the next period, empty: deliveries go on while
    /// the checkpoint writes.</summary>
    public Period Cut()
    {
        var period = new Period([.. _dirty], new Dictionary<string, Guid>(_applied, StringComparer.Ordinal));
        _dirty.Clear();
        _applied.Clear();
        return period;
    }

    /// <summary>
    /// The checkpoint could not write its entities: they go back to the current period, with the activations that
    /// applied them, so the next barrier writes them and still recognises one that lost its memory meanwhile. (A touch
    /// during the failed checkpoint gives way to the older activation: the next write, or touch, by another one is
    /// then taken as a loss, which replays at worst once too often.)
    /// </summary>
    public void NotWritten(Period period)
    {
        _dirty.UnionWith(period.Keys);
        foreach (var (key, activation) in period.Applied) _applied[key] = activation;
    }

    /// <summary>The checkpoint wrote its entities but may not cover them (some lost their memory, or a replay started
    /// meanwhile): the next barrier writes them again, and the replay owed or on its way reaches whichever activation
    /// answers.</summary>
    public void NotCovered(Period period)
    {
        _dirty.UnionWith(period.Keys);
        foreach (var key in period.Keys) _applied.TryAdd(key, ReplayPending);
    }

    /// <summary>The entities one checkpoint writes, and the activation that applied each one's events.</summary>
    public sealed record Period(string[] Keys, IReadOnlyDictionary<string, Guid> Applied)
    {
        /// <summary>The entities whose write answered from another activation than the one that applied their events
        /// in this period: the write made a state durable without those events.</summary>
        public List<string> Lost(IEnumerable<(string Key, Guid Activation)> written)
        {
            var lost = new List<string>();
            foreach (var (key, activation) in written)
            {
                if (Applied.TryGetValue(key, out var applied) && applied != activation && applied != ReplayPending) lost.Add(key);
            }
            return lost;
        }
    }
}
