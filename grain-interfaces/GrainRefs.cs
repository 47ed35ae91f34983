namespace Keystone;

/// <summary>
/// <c>GetGrain&lt;T&gt;(key)</c> for the hot paths. Orleans works out a grain interface's type on every such call by
/// formatting and parsing its type name: at saturation that was about 2.5 % of all bytes the silo allocated, from the
/// operators' dispatch to entity grains and graph vertices. An interface's grain type and interface type never
/// change, so they are worked out once per interface here and the reference is built from the grain id.
/// </summary>
/// <remarks>
/// The references themselves are kept too, in a fixed-size lossy table per interface: building one encodes its key
/// and allocates the proxy, and an operator asks for the same few thousand entities delivery after delivery (1.7 %
/// of the silo's bytes at saturation). A reference is immutable and safe to share; a collision only rebuilds it.
/// </remarks>
public static class GrainRefs
{
    public static T Get<T>(IGrainFactory grains, string key) where T : IGrainWithStringKey => Cache<T>.Get(grains, key);

    private static class Cache<T> where T : IGrainWithStringKey
    {
        // A reference type, so that readers on other threads see both ids or neither.
        private sealed record Ids(GrainType Type, GrainInterfaceType Interface);

        private sealed record Entry(IGrainFactory Grains, string Key, T Reference);

        private const int Slots = 1 << 14;
        private static readonly Entry?[] s_references = new Entry?[Slots];
        private static Ids? s_ids;

        public static T Get(IGrainFactory grains, string key)
        {
            ref var slot = ref s_references[(int)((uint)StringComparer.Ordinal.GetHashCode(key) & (Slots - 1))];
            // The factory is part of the entry: a test host runs several silos in one process.
            if (slot is { } hit && ReferenceEquals(hit.Grains, grains) && string.Equals(hit.Key, key, StringComparison.Ordinal)) return hit.Reference;
            var reference = Create(grains, key);
            slot = new Entry(grains, key, reference);
            return reference;
        }

        private static T Create(IGrainFactory grains, string key)
        {
            if (Volatile.Read(ref s_ids) is { } ids) return (T)grains.GetGrain(GrainId.Create(ids.Type, key), ids.Interface);
            var reference = grains.GetGrain<T>(key);
            var resolved = (GrainReference)(object)reference;
            Volatile.Write(ref s_ids, new Ids(resolved.GrainId.Type, resolved.InterfaceType));
            return reference;
        }
    }
}
