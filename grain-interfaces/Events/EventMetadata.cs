using System.Collections;

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
            var i = list.FindIndex(e => e.Key == k);
            if (i >= 0) list[i] = new(k, v);
            else list.Add(new(k, v));
        }
        return list.Count == 0 ? Empty : new EventMetadata([.. list]);
    }

    public static EventMetadata Of(params (string Key, string Value)[] entries) =>
        From(entries.Select(e => new KeyValuePair<string, string>(e.Key, e.Value)));

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

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)_entries).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

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
