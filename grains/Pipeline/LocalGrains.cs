using System.Collections.Concurrent;

namespace Keystone.Pipeline;

/// <summary>
/// The activations of one grain type in this silo, by partition. A stopping silo has them write what they hold before
/// Orleans deactivates its grains (the silo's <c>SiloStopFlush</c>): Orleans deactivates them all at once, the
/// snapshot buckets that hold their state among them.
/// </summary>
public abstract class LocalGrains<TGrain> where TGrain : class
{
    private readonly ConcurrentDictionary<int, TGrain> _grains = new();

    public IReadOnlyCollection<TGrain> Active => [.. _grains.Values];

    internal void Add(int partition, TGrain grain) => _grains[partition] = grain;

    internal void Remove(int partition, TGrain grain) =>
        ((ICollection<KeyValuePair<int, TGrain>>)_grains).Remove(new(partition, grain));
}
