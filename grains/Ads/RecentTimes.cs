using System.Collections;

namespace Keystone.Ads;

/// <summary>
/// A few instants in the order they were added, as UTC ticks: a profile's impressions within the frequency window, a
/// device's or a profile's clicks within the last minute. A value held inline in its campaign's table, not a list: a
/// campaign tracks tens of thousands of profiles, most with one or two instants, and as a list and its array each they
/// were among what every young collection of an ads run copied (docs/performance.md, stop 46). Up to two instants
/// live in the value itself; more go to an array of their own.
/// </summary>
public struct RecentTimes : IEnumerable<DateTimeOffset>
{
    private long _first;
    private long _second;
    // Every instant, once there are more than two (the two fields are then unused).
    private long[]? _more;
    private int _count;

    public readonly int Count => _count;

    public readonly DateTimeOffset this[int index] =>
        (uint)index < (uint)_count ? new(TicksAt(index), TimeSpan.Zero) : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>The instant added last; null when there is none.</summary>
    public readonly DateTimeOffset? Last => _count == 0 ? null : this[_count - 1];

    private readonly long TicksAt(int index) => _more is not null ? _more[index] : index == 0 ? _first : _second;

    public void Add(DateTimeOffset at)
    {
        var ticks = at.UtcTicks;
        if (_more is null && _count < 2)
        {
            if (_count == 0) _first = ticks; else _second = ticks;
            _count++;
            return;
        }
        if (_more is null)
        {
            _more = new long[4];
            (_more[0], _more[1]) = (_first, _second);
        }
        else if (_count == _more.Length)
        {
            Array.Resize(ref _more, _count * 2);
        }
        _more[_count++] = ticks;
    }

    /// <summary>Forgets the instants at or before <paramref name="cutoff"/>, keeping the order of the rest.</summary>
    public void RemoveAtOrBefore(DateTimeOffset cutoff)
    {
        var limit = cutoff.UtcTicks;
        var kept = 0;
        for (var i = 0; i < _count; i++)
        {
            var ticks = TicksAt(i);
            if (ticks <= limit) continue;
            Set(kept++, ticks);
        }
        _count = kept;
        // Slots past the count are never read, so what they hold does not matter.
        if (_more is not null && _count <= 2) (_first, _second, _more) = (_more[0], _more[1], null);
    }

    private void Set(int index, long ticks)
    {
        if (_more is not null) _more[index] = ticks;
        else if (index == 0) _first = ticks;
        else _second = ticks;
    }

    /// <summary>Instants after <paramref name="after"/> and at or before <paramref name="atOrBefore"/>.</summary>
    public readonly int CountWithin(DateTimeOffset after, DateTimeOffset atOrBefore)
    {
        var (from, to) = (after.UtcTicks, atOrBefore.UtcTicks);
        var count = 0;
        for (var i = 0; i < _count; i++)
        {
            var ticks = TicksAt(i);
            if (ticks > from && ticks <= to) count++;
        }
        return count;
    }

    public readonly Enumerator GetEnumerator() => new(this);

    readonly IEnumerator<DateTimeOffset> IEnumerable<DateTimeOffset>.GetEnumerator() => GetEnumerator();

    readonly IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public struct Enumerator(RecentTimes times) : IEnumerator<DateTimeOffset>
    {
        private int _index = -1;

        public readonly DateTimeOffset Current => times[_index];

        readonly object IEnumerator.Current => Current;

        public bool MoveNext() => ++_index < times.Count;

        public void Reset() => _index = -1;

        public readonly void Dispose()
        {
        }
    }
}
