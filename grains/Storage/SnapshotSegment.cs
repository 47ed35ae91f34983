using System.Buffers.Binary;
using System.Text;

namespace Keystone.Storage;

/// <summary>One grain's state in a snapshot segment: its version (the ETag) and its bytes, or none for a cleared state.</summary>
public readonly record struct SnapshotRecord(string Key, long Version, ReadOnlyMemory<byte>? Data);

/// <summary>
/// The file format of a snapshot bucket's segments: many grains' states in one blob, so a checkpoint that touches
/// thousands of entities writes one blob per bucket instead of one per entity. A segment is either a delta (what
/// changed in one group of writes) or a base (every live state of the bucket, written by compaction); a bucket's
/// state is its newest base followed by the deltas after it, later records winning.
/// <code>
/// "KSS1" | flags u8 (1 = base) | count i32 | count × (keyLength i32 | key UTF-8 | version i64 | dataLength i32 (-1 = cleared) | data)
/// </code>
/// Integers are little-endian. Readers use the data's offset and length to fetch one state with a ranged read.
/// </summary>
public static class SnapshotSegment
{
    private static ReadOnlySpan<byte> Magic => "KSS1"u8;
    private const int HeaderLength = 9;

    public static byte[] Encode(IReadOnlyCollection<SnapshotRecord> records, bool isBase)
    {
        var length = HeaderLength;
        foreach (var r in records) length += 4 + Encoding.UTF8.GetByteCount(r.Key) + 8 + 4 + (r.Data?.Length ?? 0);
        var bytes = new byte[length];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        span[4] = isBase ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(span[5..], records.Count);
        var at = HeaderLength;
        foreach (var r in records)
        {
            var keyLength = Encoding.UTF8.GetBytes(r.Key, span[(at + 4)..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], keyLength);
            at += 4 + keyLength;
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], r.Version);
            at += 8;
            if (r.Data is { } data)
            {
                BinaryPrimitives.WriteInt32LittleEndian(span[at..], data.Length);
                data.Span.CopyTo(span[(at + 4)..]);
                at += 4 + data.Length;
            }
            else
            {
                BinaryPrimitives.WriteInt32LittleEndian(span[at..], -1);
                at += 4;
            }
        }
        return bytes;
    }

    /// <summary>The records of a segment with each one's data as a slice of <paramref name="segment"/> (its offset is the slice's position).</summary>
    public static (bool IsBase, List<(SnapshotRecord Record, int Offset)> Records) Decode(ReadOnlyMemory<byte> segment, string name)
    {
        var span = segment.Span;
        if (span.Length < HeaderLength || !span[..4].SequenceEqual(Magic))
            throw new InvalidDataException($"snapshot segment {name} does not start with a KSS1 header");
        var isBase = span[4] == 1;
        var count = BinaryPrimitives.ReadInt32LittleEndian(span[5..]);
        if (count < 0) throw new InvalidDataException($"snapshot segment {name}: negative record count");
        var records = new List<(SnapshotRecord, int)>(count);
        var at = HeaderLength;
        try
        {
            for (var i = 0; i < count; i++)
            {
                var keyLength = BinaryPrimitives.ReadInt32LittleEndian(span[at..]);
                var key = Encoding.UTF8.GetString(span.Slice(at + 4, keyLength));
                at += 4 + keyLength;
                var version = BinaryPrimitives.ReadInt64LittleEndian(span[at..]);
                var dataLength = BinaryPrimitives.ReadInt32LittleEndian(span[(at + 8)..]);
                at += 12;
                if (dataLength < 0)
                {
                    records.Add((new SnapshotRecord(key, version, null), at));
                    continue;
                }
                if (at + dataLength > span.Length) throw new ArgumentOutOfRangeException(nameof(segment));
                records.Add((new SnapshotRecord(key, version, segment.Slice(at, dataLength)), at));
                at += dataLength;
            }
        }
        catch (ArgumentOutOfRangeException)
        {
            // Blobs are written whole (one put) so a short one is corruption, not a torn tail: refuse it loudly.
            throw new InvalidDataException($"snapshot segment {name} ends inside record {records.Count + 1} of {count}");
        }
        return (isBase, records);
    }
}

/// <summary>Where the newest state of a key lies: segment, offset and length of its data, and its version.</summary>
public readonly record struct SnapshotLocation(long Segment, int Offset, int Length, long Version);

/// <summary>
/// A bucket's index: for every live key, the segment that holds its newest state, and for every segment how much of
/// it is still live. Built by applying the bucket's segments in order and kept current as the bucket writes new ones.
/// Pure, so its rules (a base resets the bucket, a cleared record removes the key, a later record wins, a segment
/// nothing points into can go, when to compact) are unit-tested without storage.
/// </summary>
public sealed class SnapshotIndex
{
    private readonly Dictionary<string, SnapshotLocation> _live = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, SegmentUse> _segments = [];

    private sealed class SegmentUse(bool isBase)
    {
        public bool IsBase { get; } = isBase;
        public long Stored { get; set; }
        public int LiveKeys { get; set; }
        public bool HasClears { get; set; }
    }

    public int Count => _live.Count;

    /// <summary>The segments from the newest base on that a reload reads (dead ones are forgotten once deleted), oldest first.</summary>
    public IReadOnlyCollection<long> Segments => _segments.Keys;

    /// <summary>Bytes of the newest state of every live key.</summary>
    public long LiveBytes { get; private set; }

    /// <summary>Bytes of state in all the bucket's segments: the live ones and the overwritten ones.</summary>
    public long StoredBytes { get; private set; }

    public long GarbageBytes => StoredBytes - LiveBytes;

    public bool IsBase(long segment) => _segments.TryGetValue(segment, out var use) && use.IsBase;

    /// <summary>
    /// Whether to fold the bucket into a new base: once it has at least <paramref name="compactAfter"/> segments and
    /// as many overwritten bytes as live ones (what a reload reads is then at most twice what it needs), or more than
    /// four times <paramref name="compactAfter"/> segments, whatever their size (a reload's request count). Segments
    /// that hold nothing live are deleted as they die (<see cref="Dead"/>), so a bucket whose states are all rewritten
    /// between checkpoints, the usual case under load, is not rewritten as a whole: before, the deltas of one busy
    /// checkpoint outweighed the base, and every such checkpoint also rewrote the whole bucket.
    /// </summary>
    public bool ShouldCompact(int compactAfter) =>
        _segments.Count > 4 * compactAfter || (_segments.Count >= compactAfter && GarbageBytes >= LiveBytes && GarbageBytes > 0);

    public bool TryGet(string key, out SnapshotLocation location) => _live.TryGetValue(key, out location);

    public IEnumerable<KeyValuePair<string, SnapshotLocation>> Live => _live;

    public void Apply(long segment, bool isBase, IEnumerable<(SnapshotRecord Record, int Offset)> records)
    {
        if (isBase)
        {
            _live.Clear();
            _segments.Clear();
            LiveBytes = 0;
            StoredBytes = 0;
        }
        var use = new SegmentUse(isBase);
        _segments[segment] = use;
        foreach (var (record, offset) in records)
        {
            if (_live.Remove(record.Key, out var previous))
            {
                var old = _segments[previous.Segment];
                old.LiveKeys--;
                LiveBytes -= previous.Length;
            }
            if (record.Data is { } data)
            {
                _live[record.Key] = new SnapshotLocation(segment, offset, data.Length, record.Version);
                use.LiveKeys++;
                use.Stored += data.Length;
                LiveBytes += data.Length;
                StoredBytes += data.Length;
            }
            else
            {
                use.HasClears = true;
            }
        }
    }

    /// <summary>
    /// Deltas that no live key points into any more (every state in them was written again since) and that clear no
    /// state: deleting them changes nothing a reload would see. A delta that clears a state stays until a compaction:
    /// without it, an older segment's copy of that state would come back. The base stays too: a reload starts from it,
    /// and segments older than it, which a failed compaction may have left behind, must stay ignored.
    /// </summary>
    public IReadOnlyList<long> Dead() =>
        [.. _segments.Where(s => !s.Value.IsBase && s.Value.LiveKeys == 0 && !s.Value.HasClears).Select(s => s.Key)];

    /// <summary>Forgets a dead segment (see <see cref="Dead"/>) once it is deleted; returns the bytes it held.</summary>
    public long Forget(long segment)
    {
        if (!_segments.TryGetValue(segment, out var use)) return 0;
        if (use.IsBase || use.LiveKeys > 0 || use.HasClears) throw new InvalidOperationException($"segment {segment} is not dead");
        _segments.Remove(segment);
        StoredBytes -= use.Stored;
        return use.Stored;
    }

    /// <summary>Segments a live key points into.</summary>
    public IReadOnlySet<long> Referenced() => _live.Values.Select(l => l.Segment).ToHashSet();
}
