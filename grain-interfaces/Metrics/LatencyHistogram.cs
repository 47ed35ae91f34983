using System.Numerics;

namespace Keystone;

/// <summary>
/// A log-linear histogram of durations in microseconds (16 sub-buckets per power of two, so any percentile is
/// within about 6 % of the truth). Small, mergeable across partitions and silos, and cheap to record into.
/// Not thread-safe: grains own one each.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 4;
    private const int SubCount = 1 << SubBits;
    private const int Linear = SubCount * 2;
    private const int MaxExponent = 42;
    public const int BucketCount = Linear + (MaxExponent - 5 + 1) * SubCount;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }
    public long SumMicros { get; private set; }
    public long MaxMicros { get; private set; }

    public static int IndexOf(long micros)
    {
        if (micros < Linear) return (int)Math.Max(0, micros);
        var e = 63 - BitOperations.LeadingZeroCount((ulong)micros);
        if (e > MaxExponent) return BucketCount - 1;
        var sub = (int)(micros >> (e - SubBits)) - SubCount;
        return Linear + (e - 5) * SubCount + sub;
    }

    /// <summary>The smallest value that falls in bucket <paramref name="index"/>.</summary>
    public static long LowerBound(int index)
    {
        if (index < Linear) return index;
        var e = (index - Linear) / SubCount + 5;
        var sub = (index - Linear) % SubCount;
        return (long)(SubCount + sub) << (e - SubBits);
    }

    /// <summary>The midpoint of the bucket: what a percentile in it reports.</summary>
    public static long Representative(int index)
    {
        var low = LowerBound(index);
        var high = index + 1 < BucketCount ? LowerBound(index + 1) : low * 2;
        return low + (high - low - 1) / 2;
    }

    public void Record(long micros, long count = 1)
    {
        if (micros < 0) micros = 0;
        _counts[IndexOf(micros)] += count;
        Count += count;
        SumMicros += micros * count;
        if (micros > MaxMicros) MaxMicros = micros;
    }

    public void Record(TimeSpan duration) => Record((long)duration.TotalMicroseconds);

    public void Add(LatencySnapshot snapshot)
    {
        for (var i = 0; i < snapshot.Indexes.Length; i++) _counts[snapshot.Indexes[i]] += snapshot.Counts[i];
        Count += snapshot.Count;
        SumMicros += snapshot.SumMicros;
        MaxMicros = Math.Max(MaxMicros, snapshot.MaxMicros);
    }

    public void Clear()
    {
        Array.Clear(_counts);
        Count = SumMicros = MaxMicros = 0;
    }

    public LatencySnapshot Snapshot()
    {
        var indexes = new List<int>();
        var counts = new List<long>();
        for (var i = 0; i < _counts.Length; i++)
        {
            if (_counts[i] == 0) continue;
            indexes.Add(i);
            counts.Add(_counts[i]);
        }
        return new LatencySnapshot([.. indexes], [.. counts], Count, SumMicros, MaxMicros);
    }
}

/// <summary>A histogram's non-empty buckets; merge with <see cref="Merge"/>, read with <see cref="Percentile"/>.</summary>
[GenerateSerializer, Immutable]
public sealed record LatencySnapshot(
    [property: Id(0)] int[] Indexes,
    [property: Id(1)] long[] Counts,
    [property: Id(2)] long Count,
    [property: Id(3)] long SumMicros,
    [property: Id(4)] long MaxMicros)
{
    public static readonly LatencySnapshot Empty = new([], [], 0, 0, 0);

    public double MeanMillis => Count == 0 ? 0 : SumMicros / 1000.0 / Count;
    public double MaxMillis => MaxMicros / 1000.0;

    /// <summary>The value at quantile <paramref name="q"/> (0..1), in milliseconds; 0 when empty.</summary>
    public double Percentile(double q)
    {
        if (Count == 0) return 0;
        var rank = (long)Math.Ceiling(Math.Clamp(q, 0, 1) * Count);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (var i = 0; i < Indexes.Length; i++)
        {
            seen += Counts[i];
            if (seen >= rank) return Math.Min(LatencyHistogram.Representative(Indexes[i]), MaxMicros) / 1000.0;
        }
        return MaxMicros / 1000.0;
    }

    public static LatencySnapshot Merge(IEnumerable<LatencySnapshot> snapshots)
    {
        var h = new LatencyHistogram();
        foreach (var s in snapshots) h.Add(s);
        return h.Snapshot();
    }
}
