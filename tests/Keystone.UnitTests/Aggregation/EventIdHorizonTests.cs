using Keystone.Aggregation;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Aggregation;

public class EventIdHorizonTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;

    private static Guid[] Ids(int count) => [.. Enumerable.Range(0, count).Select(_ => Guid.NewGuid())];

    private static long[] Hashes(IEnumerable<Guid> ids) => [.. ids.Select(EventIdHorizon.Hash)];

    [Fact]
    public void A_repeated_id_is_recognised()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();

        Assert.True(seen.TryAdd(a, T0));
        Assert.False(seen.TryAdd(a, T0.AddSeconds(1)));
        Assert.True(seen.Contains(a));
        Assert.False(seen.Contains(b));
        Assert.Equal(1, seen.Count);

        Assert.True(seen.TryAdd(b, T0.AddSeconds(2)));
        Assert.Equal(2, seen.Count);
    }

    [Fact]
    public void Ids_are_remembered_for_the_whole_horizon_and_forgotten_after_it()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        seen.TryAdd(a, T0);
        seen.TryAdd(b, T0.AddMinutes(4));

        // Exactly the horizon old: still remembered.
        seen.Expire(T0.AddMinutes(10));
        Assert.True(seen.Contains(a));
        Assert.Equal(2, seen.Count);

        seen.Expire(T0.AddMinutes(10).AddTicks(1));
        Assert.False(seen.Contains(a));
        Assert.True(seen.Contains(b));
        Assert.Equal(1, seen.Count);

        // Forgotten, it counts as new again.
        Assert.True(seen.TryAdd(a, T0.AddMinutes(11)));
    }

    [Fact]
    public void Adding_expires_what_the_horizon_has_passed()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        seen.TryAdd(a, T0);
        seen.TryAdd(b, T0.AddMinutes(1));

        // 10 min 30 s after a, 9 min 30 s after b.
        Assert.True(seen.TryAdd(Guid.NewGuid(), T0.AddMinutes(10.5)));

        Assert.Equal(2, seen.Count);
        Assert.False(seen.Contains(a));
        Assert.True(seen.Contains(b));
    }

    [Fact]
    public void At_capacity_the_oldest_id_is_forgotten_first()
    {
        var seen = new EventIdHorizon(TimeSpan.FromDays(1), 3);
        var ids = Ids(4);
        for (var i = 0; i < 4; i++) Assert.True(seen.TryAdd(ids[i], T0.AddSeconds(i)));

        Assert.Equal(3, seen.Count);
        Assert.False(seen.Contains(ids[0]));
        Assert.True(seen.Contains(ids[1]));
        Assert.True(seen.Contains(ids[3]));
        var (hashes, seenAt) = seen.Export();
        Assert.Equal(Hashes(ids[1..]), hashes);
        Assert.Equal([T0.AddSeconds(1).UtcTicks, T0.AddSeconds(2).UtcTicks, T0.AddSeconds(3).UtcTicks], seenAt);

        // A repeat neither refreshes nor evicts.
        Assert.False(seen.TryAdd(ids[1], T0.AddSeconds(4)));
        Assert.Equal(Hashes(ids[1..]), seen.Export().Ids);
    }

    [Fact]
    public void The_ring_wraps_around_and_stays_in_order()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var ids = Ids(11);
        for (var i = 0; i < 8; i++) seen.TryAdd(ids[i], T0.AddMinutes(i));

        // At 12 min, ids 0 and 1 (seen at 0 and 1 min) have expired: 8 and 9 go into the freed slots at the front.
        Assert.True(seen.TryAdd(ids[8], T0.AddMinutes(12)));
        Assert.True(seen.TryAdd(ids[9], T0.AddMinutes(12)));

        Assert.Equal(8, seen.Count);
        Assert.Equal(Hashes(ids[2..10]), seen.Export().Ids);
        Assert.False(seen.TryAdd(ids[3], T0.AddMinutes(12)));
        Assert.False(seen.TryAdd(ids[9], T0.AddMinutes(12)));
        Assert.False(seen.Contains(ids[1]));

        // Full while wrapped: growing must keep the order.
        Assert.True(seen.TryAdd(ids[10], T0.AddMinutes(12)));
        var (hashes, seenAt) = seen.Export();
        Assert.Equal(Hashes(ids[2..11]), hashes);
        Assert.Equal(
            [.. Enumerable.Range(2, 6).Select(m => T0.AddMinutes(m).UtcTicks), T0.AddMinutes(12).UtcTicks, T0.AddMinutes(12).UtcTicks, T0.AddMinutes(12).UtcTicks],
            seenAt);
    }

    [Fact]
    public void At_capacity_the_ring_keeps_the_newest_ids_in_order()
    {
        var seen = new EventIdHorizon(TimeSpan.FromDays(1), 8);
        var ids = Ids(20);
        for (var i = 0; i < 20; i++) seen.TryAdd(ids[i], T0.AddSeconds(i));

        Assert.Equal(8, seen.Count);
        Assert.Equal(Hashes(ids[12..]), seen.Export().Ids);
        Assert.All(ids[..12], id => Assert.False(seen.Contains(id)));
        Assert.All(ids[12..], id => Assert.True(seen.Contains(id)));
    }

    [Fact]
    public void Export_and_import_round_trip()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var ids = Ids(5);
        for (var i = 0; i < 5; i++) seen.TryAdd(ids[i], T0.AddSeconds(i));
        var (hashes, seenAt) = seen.Export();

        var restored = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        restored.Import(hashes, seenAt);

        Assert.Equal(5, restored.Count);
        Assert.All(ids, id => Assert.False(restored.TryAdd(id, T0.AddSeconds(10))));
        Assert.Equal(hashes, restored.Export().Ids);
        Assert.Equal(seenAt, restored.Export().SeenAt);

        // The restored times still drive expiry: 10 min after id 0, it alone is forgotten.
        restored.Expire(T0.AddMinutes(10).AddMilliseconds(500));
        Assert.Equal(Hashes(ids[1..]), restored.Export().Ids);
    }

    [Fact]
    public void The_packed_form_round_trips_ids_and_times_in_order_and_costs_about_nine_bytes_an_id()
    {
        var seen = new EventIdHorizon(TimeSpan.FromDays(1), 10_000);
        var ids = Ids(1_000);
        // Batches share an instant; a clock may step back (the difference is signed).
        for (var i = 0; i < ids.Length; i++) seen.TryAdd(ids[i], T0.AddMilliseconds(i / 50 * 20 - (i == 700 ? 5_000 : 0)));
        var (hashes, seenAt) = seen.Export();

        var packed = seen.Pack();
        var restored = new EventIdHorizon(TimeSpan.FromDays(1), 10_000);
        restored.Import(packed);

        Assert.Equal(hashes, restored.Export().Ids);
        Assert.Equal(seenAt, restored.Export().SeenAt);
        Assert.All(ids, id => Assert.True(restored.Contains(id)));
        Assert.InRange(packed.Length, 9_000, 9_500);
    }

    [Fact]
    public void The_packed_form_keeps_the_newest_within_capacity_and_an_empty_one_clears()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var ids = Ids(5);
        for (var i = 0; i < 5; i++) seen.TryAdd(ids[i], T0.AddSeconds(i));

        var small = new EventIdHorizon(TimeSpan.FromMinutes(10), 2);
        small.Import(seen.Pack());
        Assert.Equal(Hashes(ids[3..]), small.Export().Ids);
        Assert.Equal([T0.AddSeconds(3).UtcTicks, T0.AddSeconds(4).UtcTicks], small.Export().SeenAt);

        small.Import(new EventIdHorizon(TimeSpan.FromMinutes(10), 2).Pack());
        Assert.Equal(0, small.Count);
        small.Import(ReadOnlySpan<byte>.Empty);
        Assert.Equal(0, small.Count);
    }

    [Fact]
    public void A_malformed_packed_form_is_refused()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        foreach (var id in Ids(3)) seen.TryAdd(id, T0);
        var packed = seen.Pack();
        var restored = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);

        Assert.Contains("unknown format 9", Assert.Throws<InvalidDataException>(() => restored.Import([9, .. packed[1..]])).Message);
        Assert.Contains("ends inside a number", Assert.Throws<InvalidDataException>(() => restored.Import(packed.AsSpan(0, packed.Length - 1))).Message);
        Assert.Contains("do not fit", Assert.Throws<InvalidDataException>(() => restored.Import(packed.AsSpan(0, 20))).Message);
        Assert.Contains("after the last time", Assert.Throws<InvalidDataException>(() => restored.Import([.. packed, 0])).Message);
    }

    [Fact]
    public void Import_into_a_smaller_capacity_keeps_the_newest_and_null_clears()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 100);
        var ids = Ids(5);
        for (var i = 0; i < 5; i++) seen.TryAdd(ids[i], T0.AddSeconds(i));
        var (hashes, seenAt) = seen.Export();

        var small = new EventIdHorizon(TimeSpan.FromMinutes(10), 2);
        small.Import(hashes, seenAt);
        Assert.Equal(Hashes(ids[3..]), small.Export().Ids);

        small.Import(null, null);
        Assert.Equal(0, small.Count);
        Assert.True(small.TryAdd(ids[4], T0));
    }

    [Fact]
    public void Memory_is_given_back_after_a_burst()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(1), 1_000);
        for (var i = 0; i < 200; i++) seen.TryAdd(Guid.NewGuid(), T0);
        // 200 ids grew the arrays 8 → 16 → ... → 256 slots of 16 bytes, plus 48.
        Assert.Equal(256 * 16 + 48, seen.ApproximateBytes);

        seen.TryAdd(Guid.NewGuid(), T0.AddMinutes(2));

        Assert.Equal(1, seen.Count);
        Assert.Equal(128 * 16 + 48, seen.ApproximateBytes);
    }

    [Fact]
    public void The_hash_is_the_two_halves_of_the_id_folded_together()
    {
        // Checkpoints store these hashes, so they must not change between versions. Guid bytes are written
        // little-endian for the first three groups: the first id has 0x01 as byte 15, the second as byte 6.
        Assert.Equal(1L << 56, EventIdHorizon.Hash(Guid.Parse("00000000-0000-0000-0000-000000000001")));
        Assert.Equal(1L << 48, EventIdHorizon.Hash(Guid.Parse("00000000-0000-0001-0000-000000000000")));
        Assert.Equal((1L << 56) ^ (1L << 48), EventIdHorizon.Hash(Guid.Parse("00000000-0000-0001-0000-000000000001")));
    }

    [Fact]
    public void Past_the_index_threshold_lookups_stay_exact_through_eviction_expiry_and_import()
    {
        var seen = new EventIdHorizon(TimeSpan.FromMinutes(10), 3_000);
        var ids = Ids(4_000);
        for (var i = 0; i < ids.Length; i++) Assert.True(seen.TryAdd(ids[i], T0.AddMilliseconds(i)));

        // Capacity 3,000: the first 1,000 were forgotten, the rest are recognised.
        Assert.Equal(3_000, seen.Count);
        Assert.All(ids[..1_000], id => Assert.False(seen.Contains(id)));
        Assert.All(ids[1_000..], id => Assert.False(seen.TryAdd(id, T0.AddSeconds(5))));

        var copy = new EventIdHorizon(TimeSpan.FromMinutes(10), 3_000);
        var (hashes, at) = seen.Export();
        copy.Import(hashes, at);
        Assert.All(ids[1_000..], id => Assert.True(copy.Contains(id)));

        // Expiry removes from the index too: forgotten ids count as new again.
        seen.Expire(T0.AddMinutes(10).AddMilliseconds(3_500));
        Assert.Equal(500, seen.Count);
        Assert.False(seen.Contains(ids[3_000]));
        Assert.True(seen.Contains(ids[3_999]));
        Assert.True(seen.TryAdd(ids[3_000], T0.AddMinutes(11)));
    }

    [Fact]
    public void Outgrown_arrays_go_back_to_the_shared_pool_so_the_next_ring_growing_through_the_same_sizes_reuses_them()
    {
        // Same thread throughout: the shared pool keeps a returned array per size for the thread that returned it.
        static long Grow(int ids)
        {
            var ring = new EventIdHorizon(TimeSpan.FromHours(1), 100_000);
            var keys = Ids(ids);
            var before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var id in keys) ring.TryAdd(id, T0);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(ids, ring.Count);
            Assert.All(keys, id => Assert.True(ring.Contains(id)));
            return allocated;
        }

        Grow(200);
        var second = Grow(200);
        // Doubling 8 -> 16 -> ... -> 256 slots of 16 bytes allocates 16 * (16 + ... + 256) = 8,160 bytes without the
        // pool; with it, only the 256-slot array the first ring kept is new (4,096 bytes plus the array header).
        Assert.True(second < 6_000, $"{second} bytes allocated by the second ring's growth");
    }
}

