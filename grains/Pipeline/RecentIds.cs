namespace Keystone.Pipeline;

/// <summary>
/// Remembers the last <c>capacity</c> ids and forgets the oldest first: a de-duplication horizon with a hard memory
/// bound, for places where delivery can repeat (SDK retries, replays, stream redelivery).
/// </summary>
public sealed class RecentIds<T> where T : notnull
{
    private readonly HashSet<T> _set;
    private readonly T[] _ring;
    private int _next;

    public RecentIds(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new T[capacity];
        _set = new HashSet<T>(capacity);
    }

    public int Capacity => _ring.Length;
    public int Count => _set.Count;

    public bool Contains(T id) => _set.Contains(id);

    /// <summary>Adds the id; false when it is already remembered (a repeat).</summary>
    public bool TryAdd(T id)
    {
        if (!_set.Add(id)) return false;
        if (_set.Count > _ring.Length) _set.Remove(_ring[_next]);
        _ring[_next] = id;
        _next = (_next + 1) % _ring.Length;
        return true;
    }

    /// <summary>Oldest first, so that re-adding them in order rebuilds the same horizon.</summary>
    public IEnumerable<T> InOrder()
    {
        var count = _set.Count;
        var start = (_next - count + _ring.Length) % _ring.Length;
        for (var i = 0; i < count; i++) yield return _ring[(start + i) % _ring.Length];
    }

    public void Clear()
    {
        _set.Clear();
        Array.Clear(_ring);
        _next = 0;
    }
}
