using Keystone.Storage;

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
    // Ids in the first half of one array, the times they were seen in the second: _size slots of each. Arrays past
    // the first are rented from the shared pool and given back as the ring grows or shrinks: grown by doubling, the
    // arrays a grain outgrew had been about 2 % of the bytes the pipeline allocated at saturation.
    private long[] _slots = new long[2 * InitialSize];
    private int _size = InitialSize;
    private bool _pooled;
    private int _start;
    private int _count;
    private HashSet<long>? _index;

    public const int IndexThreshold = 512;
    private const int InitialSize = 8;

    public int Count => _count;
    public TimeSpan Horizon { get; } = horizon;
    public int Capacity { get; } = capacity;

    /// <summary>Approximate bytes held: what the per-grain memory bound is about.</summary>
    public int ApproximateBytes => _size * 16 + 48;

    public static long Hash(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes);
        return BitConverter.ToInt64(bytes) ^ BitConverter.ToInt64(bytes[8..]);
    }

    public bool Contains(Guid id) => IndexOf(Hash(id)) >= 0;

    /// <summary>Whether an id with this <see cref="Hash"/> is remembered.</summary>
    public bool Contains(long hash) => IndexOf(hash) >= 0;

    /// <summary>How many ids were forgotten so far (expired or pushed out): what a caller that keeps something per
    /// remembered id watches for, to drop its own entries only when this changed.</summary>
    public long Forgotten { get; private set; }

    /// <summary>Records the id; false when it was already there (a repeat, to be ignored).</summary>
    public bool TryAdd(Guid id, DateTimeOffset now)
    {
        var hash = Hash(id);
        Expire(now);
        if (IndexOf(hash) >= 0) return false;
        if (_count == Capacity) RemoveOldest();
        if (_count == _size) Grow();
        var slot = (_start + _count) % _size;
        _slots[slot] = hash;
        _slots[_size + slot] = now.UtcTicks;
        _count++;
        if (_index is not null) _index.Add(hash);
        else if (_count > IndexThreshold) BuildIndex();
        return true;
    }

    /// <summary>Forgets ids older than the horizon.</summary>
    public void Expire(DateTimeOffset now)
    {
        var cutoff = now.UtcTicks - Horizon.Ticks;
        while (_count > 0 && _slots[_size + _start] < cutoff) RemoveOldest();
        // Give memory back when a burst has passed.
        if (_size > 64 && _count < _size / 4) Resize(Math.Max(InitialSize, _size / 2));
    }

    private void BuildIndex()
    {
        _index = new HashSet<long>(_count * 2);
        for (var i = 0; i < _count; i++) _index.Add(_slots[(_start + i) % _size]);
    }

    private int IndexOf(long hash)
    {
        if (_count == 0) return -1;
        // Only whether it is there matters to callers, not where.
        if (_index is not null) return _index.Contains(hash) ? 0 : -1;
        var first = Math.Min(_count, _size - _start);
        var i = _slots.AsSpan(_start, first).IndexOf(hash);
        if (i >= 0) return i;
        var j = _slots.AsSpan(0, _count - first).IndexOf(hash);
        return j >= 0 ? first + j : -1;
    }

    private void RemoveOldest()
    {
        Forgotten++;
        _index?.Remove(_slots[_start]);
        if (_index is not null && _count <= IndexThreshold / 2) _index = null;
        _start = (_start + 1) % _size;
        _count--;
    }

    private void Grow() => Resize(Math.Min(Math.Max(InitialSize, _size * 2), Math.Max(InitialSize, Capacity)));

    private void Resize(int size)
    {
        // The pool may hand out a larger array: the ring then has that many slots.
        var slots = System.Buffers.ArrayPool<long>.Shared.Rent(2 * size);
        var newSize = slots.Length / 2;
        for (var i = 0; i < _count; i++)
        {
            var from = (_start + i) % _size;
            slots[i] = _slots[from];
            slots[newSize + i] = _slots[_size + from];
        }
        Replace(slots, newSize);
    }

    private void Replace(long[] slots, int size)
    {
        var old = _slots;
        var pooled = _pooled;
        (_slots, _size, _start, _pooled) = (slots, size, 0, true);
        if (pooled) System.Buffers.ArrayPool<long>.Shared.Return(old);
    }

    /// <summary>Oldest first, for checkpoints: (hash, seen-at ticks).</summary>
    public (long[] Ids, long[] SeenAt) Export()
    {
        var ids = new long[_count];
        var seen = new long[_count];
        for (var i = 0; i < _count; i++)
        {
            var at = (_start + i) % _size;
            ids[i] = _slots[at];
            seen[i] = _slots[_size + at];
        }
        return (ids, seen);
    }

    /// <summary>
    /// The checkpoint form, oldest first: each id's 8 bytes, then each seen-at time as the varint (zigzag) difference
    /// from the one before. The times of a batch are one instant and a grain's ids arrive in time order, so a time
    /// costs a byte or two instead of eight: the memory is most of what an entity writes at every checkpoint.
    /// <code>1 (format) | count varint | count × id i64 LE | count × zigzag varint (ticks − previous ticks)</code>
    /// </summary>
    public byte[] Pack()
    {
        var length = 1 + Varint.Length((ulong)_count) + 8 * _count;
        long previous = 0;
        for (var i = 0; i < _count; i++)
        {
            var at = _slots[_size + (_start + i) % _size];
            length += Varint.Length(Varint.ZigZag(at - previous));
            previous = at;
        }
        var bytes = new byte[length];
        bytes[0] = PackFormat;
        var offset = 1 + Varint.Write(bytes.AsSpan(1), (ulong)_count);
        for (var i = 0; i < _count; i++, offset += 8)
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(offset), _slots[(_start + i) % _size]);
        previous = 0;
        for (var i = 0; i < _count; i++)
        {
            var at = _slots[_size + (_start + i) % _size];
            offset += Varint.Write(bytes.AsSpan(offset), Varint.ZigZag(at - previous));
            previous = at;
        }
        return bytes;
    }

    /// <summary>Restores what <see cref="Pack"/> wrote (null or empty: nothing); a malformed form is refused, not guessed at.</summary>
    public void Import(ReadOnlySpan<byte> packed)
    {
        _start = 0;
        _count = 0;
        _index = null;
        if (packed.IsEmpty) return;
        if (packed[0] != PackFormat) throw new InvalidDataException($"de-duplication memory: unknown format {packed[0]}");
        var offset = 1;
        var total = Varint.Read(packed, ref offset, Memory);
        if (total > (ulong)(packed.Length - offset) / 9) throw new InvalidDataException($"de-duplication memory: {total} ids do not fit in {packed.Length} bytes");
        var count = (int)total;
        var n = Math.Min(count, Capacity);
        var skip = count - n;
        var slots = System.Buffers.ArrayPool<long>.Shared.Rent(2 * Math.Max(InitialSize, n));
        var size = slots.Length / 2;
        for (var i = skip; i < count; i++)
            slots[i - skip] = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(packed[(offset + 8 * i)..]);
        offset += 8 * count;
        long at = 0;
        for (var i = 0; i < count; i++)
        {
            at += Varint.UnZigZag(Varint.Read(packed, ref offset, Memory));
            if (i >= skip) slots[size + i - skip] = at;
        }
        if (offset != packed.Length) throw new InvalidDataException($"de-duplication memory: {packed.Length - offset} bytes after the last time");
        Replace(slots, size);
        _count = n;
        if (_count > IndexThreshold) BuildIndex();
    }

    private const byte PackFormat = 1;
    private const string Memory = "de-duplication memory";

    /// <summary>Restores a state's memory: packed, or as the two arrays states written before the packed form hold.</summary>
    public void Restore(byte[]? packed, long[]? ids, long[]? seenAt)
    {
        if (packed is not null) Import(packed.AsSpan());
        else Import(ids, seenAt);
    }

    public void Import(long[]? ids, long[]? seenAt)
    {
        _start = 0;
        _count = 0;
        _index = null;
        if (ids is null || seenAt is null) return;
        var n = Math.Min(Math.Min(ids.Length, seenAt.Length), Capacity);
        var skip = Math.Min(ids.Length, seenAt.Length) - n;
        var slots = System.Buffers.ArrayPool<long>.Shared.Rent(2 * Math.Max(InitialSize, n));
        var size = slots.Length / 2;
        Array.Copy(ids, skip, slots, 0, n);
        Array.Copy(seenAt, skip, slots, size, n);
        Replace(slots, size);
        _count = n;
        if (_count > IndexThreshold) BuildIndex();
    }
}
