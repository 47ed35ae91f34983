namespace Keystone.Aggregation;

/// <summary>
/// The event ids a grain has applied recently, for idempotency under redelivery: remembered for at least
/// <c>horizon</c> of processing time, at most <c>capacity</c> of them (oldest forgotten first), so memory per grain
/// stays bounded. Ids are kept as 64-bit hashes in flat arrays (12 bytes each) rather than a hash set (about 40):
/// for a user's few hundred ids a vectorised scan is as fast as hashing and a third of the memory. Past
/// <see cref="IndexThreshold"/> ids (an ad campaign remembers hundreds of thousands) a hash index is added, because a
/// scan would cost more than the event it guards.
/// </summary>
public sealed class EventIdHorizon(TimeSpan horizon, int capacity)
{
    private long[] _ids = new long[8];
    private long[] _seenAt = new long[8];
    private int _start;
    private int _count;
    private HashSet<long>? _index;

    public const int IndexThreshold = 512;

    public int Count => _count;
    public TimeSpan Horizon { get; } = horizon;
    public int Capacity { get; } = capacity;

    /// <summary>Approximate bytes held: what the per-grain memory bound is about.</summary>
    public int ApproximateBytes => _ids.Length * 16 + 48;

    public static long Hash(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes);
        return BitConverter.ToInt64(bytes) ^ BitConverter.ToInt64(bytes[8..]);
    }

    public bool Contains(Guid id) => IndexOf(Hash(id)) >= 0;

    /// <summary>Records the id; false when it was already there (a repeat, to be ignored).</summary>
    public bool TryAdd(Guid id, DateTimeOffset now)
    {
        var hash = Hash(id);
        Expire(now);
        if (IndexOf(hash) >= 0) return false;
        if (_count == Capacity) RemoveOldest();
        if (_count == _ids.Length) Grow();
        var slot = (_start + _count) % _ids.Length;
        _ids[slot] = hash;
        _seenAt[slot] = now.UtcTicks;
        _count++;
        if (_index is not null) _index.Add(hash);
        else if (_count > IndexThreshold) BuildIndex();
        return true;
    }

    /// <summary>Forgets ids older than the horizon.</summary>
    public void Expire(DateTimeOffset now)
    {
        var cutoff = now.UtcTicks - Horizon.Ticks;
        while (_count > 0 && _seenAt[_start] < cutoff) RemoveOldest();
        // Give memory back when a burst has passed.
        if (_ids.Length > 64 && _count < _ids.Length / 4) Resize(Math.Max(8, _ids.Length / 2));
    }

    private void BuildIndex()
    {
        _index = new HashSet<long>(_count * 2);
        for (var i = 0; i < _count; i++) _index.Add(_ids[(_start + i) % _ids.Length]);
    }

    private int IndexOf(long hash)
    {
        if (_count == 0) return -1;
        // Only whether it is there matters to callers, not where.
        if (_index is not null) return _index.Contains(hash) ? 0 : -1;
        var first = Math.Min(_count, _ids.Length - _start);
        var i = _ids.AsSpan(_start, first).IndexOf(hash);
        if (i >= 0) return i;
        var j = _ids.AsSpan(0, _count - first).IndexOf(hash);
        return j >= 0 ? first + j : -1;
    }

    private void RemoveOldest()
    {
        _index?.Remove(_ids[_start]);
        if (_index is not null && _count <= IndexThreshold / 2) _index = null;
        _start = (_start + 1) % _ids.Length;
        _count--;
    }

    private void Grow() => Resize(Math.Min(Math.Max(8, _ids.Length * 2), Math.Max(8, Capacity)));

    private void Resize(int size)
    {
        var ids = new long[size];
        var seen = new long[size];
        for (var i = 0; i < _count; i++)
        {
            ids[i] = _ids[(_start + i) % _ids.Length];
            seen[i] = _seenAt[(_start + i) % _ids.Length];
        }
        (_ids, _seenAt, _start) = (ids, seen, 0);
    }

    /// <summary>Oldest first, for checkpoints: (hash, seen-at ticks).</summary>
    public (long[] Ids, long[] SeenAt) Export()
    {
        var ids = new long[_count];
        var seen = new long[_count];
        for (var i = 0; i < _count; i++)
        {
            ids[i] = _ids[(_start + i) % _ids.Length];
            seen[i] = _seenAt[(_start + i) % _ids.Length];
        }
        return (ids, seen);
    }

    public void Import(long[]? ids, long[]? seenAt)
    {
        _start = 0;
        _count = 0;
        if (ids is null || seenAt is null) return;
        var n = Math.Min(Math.Min(ids.Length, seenAt.Length), Capacity);
        var skip = Math.Min(ids.Length, seenAt.Length) - n;
        _ids = new long[Math.Max(8, n)];
        _seenAt = new long[Math.Max(8, n)];
        Array.Copy(ids, skip, _ids, 0, n);
        Array.Copy(seenAt, skip, _seenAt, 0, n);
        _count = n;
        _index = null;
        if (_count > IndexThreshold) BuildIndex();
    }
}
