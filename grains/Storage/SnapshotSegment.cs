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
/// A bucket's index: for every live key, the segment that holds its newest state. Built by applying the bucket's
/// segments in order and kept current as the bucket writes new ones. Pure, so its rules (a base resets the bucket, a
/// cleared record removes the key, a later record wins) are unit-tested without storage.
/// </summary>
public sealed class SnapshotIndex
{
    private readonly Dictionary<string, SnapshotLocation> _live = new(StringComparer.Ordinal);
    private readonly SortedSet<long> _segments = [];

    public int Count => _live.Count;

    /// <summary>The segments applied since (and including) the newest base, oldest first.</summary>
    public IReadOnlyCollection<long> Segments => _segments;

    /// <summary>Segments written after the newest base; compaction folds them into a new base.</summary>
    public int DeltasSinceBase { get; private set; }

    /// <summary>Bytes of state in the newest base, and in the deltas written after it.</summary>
    public long BaseBytes { get; private set; }

    public long DeltaBytesSinceBase { get; private set; }

    /// <summary>
    /// Whether to fold the deltas into a new base. At least <paramref name="compactAfter"/> deltas, and deltas that hold
    /// at least as many bytes as the base: a compaction rewrites every live state, so folding a large bucket after every
    /// few small deltas rewrote it several times per checkpoint (a checkpoint's writes reach a bucket as many groups).
    /// Past four times <paramref name="compactAfter"/> deltas it folds whatever their size, which bounds what the
    /// bucket reads when it activates.
    /// </summary>
    public bool ShouldCompact(int compactAfter) =>
        DeltasSinceBase >= compactAfter && (DeltaBytesSinceBase >= BaseBytes || DeltasSinceBase >= 4 * compactAfter);

    public bool TryGet(string key, out SnapshotLocation location) => _live.TryGetValue(key, out location);

    public IEnumerable<KeyValuePair<string, SnapshotLocation>> Live => _live;

    public void Apply(long segment, bool isBase, IEnumerable<(SnapshotRecord Record, int Offset)> records)
    {
        if (isBase)
        {
            _live.Clear();
            _segments.Clear();
            DeltasSinceBase = 0;
            BaseBytes = 0;
            DeltaBytesSinceBase = 0;
        }
        else
        {
            DeltasSinceBase++;
        }
        _segments.Add(segment);
        foreach (var (record, offset) in records)
        {
            var bytes = record.Data?.Length ?? 0;
            if (isBase) BaseBytes += bytes; else DeltaBytesSinceBase += bytes;
            if (record.Data is { } data) _live[record.Key] = new SnapshotLocation(segment, offset, data.Length, record.Version);
            else _live.Remove(record.Key);
        }
    }

    /// <summary>Segments no live key points into any more (all their states were overwritten or cleared).</summary>
    public IReadOnlySet<long> Referenced() => _live.Values.Select(l => l.Segment).ToHashSet();
}
