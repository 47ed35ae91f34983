using System.Collections;
using System.Runtime.InteropServices;

namespace Keystone.Events;

/// <summary>
/// String-valued envelope metadata (<c>trace_id</c>, <c>correlation_id</c>, and what routing adds).
/// Immutable: <see cref="With(string, string)"/> returns a copy, so one event can fan out to several topics
/// with different enrichments without the copies seeing each other's changes.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class EventMetadata : IReadOnlyDictionary<string, string>, IEquatable<EventMetadata>
{
    public static readonly EventMetadata Empty = new([]);

    // A small array beats a dictionary here: metadata has a handful of entries and is serialized on every hop.
    [Id(0)] private readonly KeyValuePair<string, string>[] _entries;

    public EventMetadata(KeyValuePair<string, string>[] entries) => _entries = entries;

    public static EventMetadata From(IEnumerable<KeyValuePair<string, string>> entries)
    {
        var list = new List<KeyValuePair<string, string>>();
        foreach (var (k, v) in entries)
        {
            var i = IndexOf(CollectionsMarshal.AsSpan(list), k);
            if (i >= 0) list[i] = new(k, v);
            else list.Add(new(k, v));
        }
        return list.Count == 0 ? Empty : new EventMetadata([.. list]);
    }

    // Built directly: operators make one per emitted event (graph changes, window results), and the LINQ and list
    // path cost five objects each.
    public static EventMetadata Of(params ReadOnlySpan<(string Key, string Value)> entries)
    {
        if (entries.Length == 0) return Empty;
        var result = new KeyValuePair<string, string>[entries.Length];
        var n = 0;
        foreach (var (k, v) in entries) n = Set(result, n, k, v);
        return Sized(result, n);
    }

    private static int IndexOf(ReadOnlySpan<KeyValuePair<string, string>> entries, string key)
    {
        for (var i = 0; i < entries.Length; i++)
            if (entries[i].Key == key) return i;
        return -1;
    }

    // Sets key in the first n entries of result (replacing, or appending at n); returns the new count.
    private static int Set(KeyValuePair<string, string>[] result, int n, string key, string value)
    {
        var i = IndexOf(result.AsSpan(0, n), key);
        if (i >= 0) result[i] = new(key, value);
        else result[n++] = new(key, value);
        return n;
    }

    private static EventMetadata Sized(KeyValuePair<string, string>[] result, int n)
    {
        if (n < result.Length) Array.Resize(ref result, n);
        return new EventMetadata(result);
    }

    public EventMetadata With(string key, string value)
    {
        for (var i = 0; i < _entries.Length; i++)
        {
            if (_entries[i].Key == key)
            {
                var copy = (KeyValuePair<string, string>[])_entries.Clone();
                copy[i] = new(key, value);
                return new EventMetadata(copy);
            }
        }
        var grown = new KeyValuePair<string, string>[_entries.Length + 1];
        _entries.CopyTo(grown, 0);
        grown[^1] = new(key, value);
        return new EventMetadata(grown);
    }

    public EventMetadata With(IEnumerable<KeyValuePair<string, string>> entries)
    {
        var result = this;
        foreach (var (k, v) in entries) result = result.With(k, v);
        return result;
    }

    /// <summary>A copy with all of these set: one array for all of them (routing enriches every event with four).</summary>
    public EventMetadata With(params ReadOnlySpan<KeyValuePair<string, string>> entries)
    {
        var result = new KeyValuePair<string, string>[_entries.Length + entries.Length];
        _entries.CopyTo(result, 0);
        var n = _entries.Length;
        foreach (var (k, v) in entries) n = Set(result, n, k, v);
        return Sized(result, n);
    }

    public string this[string key] => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException(key);
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);
    public IEnumerable<string> Values => _entries.Select(e => e.Value);
    public int Count => _entries.Length;
    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, out string value)
    {
        foreach (var e in _entries)
        {
            if (e.Key == key)
            {
                value = e.Value;
                return true;
            }
        }
        value = null!;
        return false;
    }

    public string? Get(string key) => TryGetValue(key, out var v) ? v : null;

    /// <summary>The entries in order. <c>foreach</c> over an <see cref="EventMetadata"/> uses this struct enumerator:
    /// the interface's enumerator is an object per loop, and every event's metadata is enumerated on several hops.</summary>
    public ReadOnlySpan<KeyValuePair<string, string>>.Enumerator GetEnumerator() => new ReadOnlySpan<KeyValuePair<string, string>>(_entries).GetEnumerator();
    IEnumerator<KeyValuePair<string, string>> IEnumerable<KeyValuePair<string, string>>.GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)_entries).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _entries.GetEnumerator();

    public bool Equals(EventMetadata? other) =>
        other is not null && other.Count == Count && _entries.All(e => other.TryGetValue(e.Key, out var v) && v == e.Value);

    public override bool Equals(object? obj) => Equals(obj as EventMetadata);

    public override int GetHashCode()
    {
        var hash = 0;
        foreach (var e in _entries) hash ^= HashCode.Combine(e.Key, e.Value);
        return hash;
    }

    public override string ToString() => string.Join(", ", _entries.Select(e => $"{e.Key}={e.Value}"));
}
