using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Keystone.Events;
using Keystone.Storage;

namespace Keystone.Ads;

/// <summary>
/// One showing of one ad, folded from the events that share its <c>ad_session_id</c>. A value held inline in its
/// campaign's session table, not an object: a campaign has tens of thousands open, each lives for minutes, and as
/// objects they were among what every young collection of an ads run copied (docs/performance.md, stop 46).
/// </summary>
public struct AdSessionState
{
    // UTC ticks; 0 for no impression yet.
    private long _impression;
    private long _first;
    private long _last;
    private byte _quartiles;
    private byte _flags;
    private int _clicks;

    public DateTimeOffset? ImpressionAt
    {
        readonly get => _impression == 0 ? null : new DateTimeOffset(_impression, TimeSpan.Zero);
        set => _impression = value?.UtcTicks ?? 0;
    }

    public DateTimeOffset FirstEventAt
    {
        readonly get => new(_first, TimeSpan.Zero);
        set => _first = value.UtcTicks;
    }

    public DateTimeOffset LastEventAt
    {
        readonly get => new(_last, TimeSpan.Zero);
        set => _last = value.UtcTicks;
    }

    internal readonly long LastTicks => _last;
    internal readonly long FirstTicks => _first;

    /// <summary>Quartiles reached: bit 0 first, bit 1 midpoint, bit 2 third.</summary>
    public int Quartiles
    {
        readonly get => _quartiles;
        set => _quartiles = (byte)value;
    }

    public bool Completed
    {
        readonly get => (_flags & 1) != 0;
        set => _flags = (byte)(value ? _flags | 1 : _flags & ~1);
    }

    public bool Skipped
    {
        readonly get => (_flags & 2) != 0;
        set => _flags = (byte)(value ? _flags | 2 : _flags & ~2);
    }

    internal readonly bool Finished => _flags != 0;

    public int Clicks
    {
        readonly get => _clicks;
        set => _clicks = value;
    }
}

public sealed class AdSessionCounters
{
    public long Sessions { get; set; }
    public long Completed { get; set; }
    public long Skipped { get; set; }
    public long Clicked { get; set; }

    /// <summary>Sessions whose first event was not an impression: a fraud signal.</summary>
    public long MissingImpression { get; set; }
}

/// <summary>
/// Ad sessionization: impression → quartiles → complete, or skip, or click. Sessions close after a timeout of event
/// time with no event (a finished one, completed or skipped, after <c>finishedGrace</c>: only a late click can still
/// come), and at most <c>maxSessions</c> stay open (the least recently active go first), so a campaign's state stays
/// bounded however many showings it has.
/// </summary>
public sealed class AdSessions(AdSessionCounters counters, TimeSpan timeout, int maxSessions, TimeSpan finishedGrace)
{
    // The fixed records of states written before the packed form.
    private const int PackedSize = 36;

    // Keyed by a stable 64-bit hash of the session id: tens of thousands of sessions per campaign are in every
    // checkpoint, and ids are 32+ characters each.
    private readonly Dictionary<long, AdSessionState> _open = [];

    public int Open => _open.Count;
    public AdSessionCounters Counters => counters;

    public AdSessionState? Find(string sessionId) => _open.TryGetValue(Key(sessionId), out var session) ? session : null;

    /// <summary>FNV-1a over the id's UTF-16 code units: stable across processes, unlike string.GetHashCode.</summary>
    public static long Key(string sessionId) => (long)FnvHash.Fnv1a64Utf16(sessionId);

    /// <summary>Folds the event into its session (opening it if needed) and returns the session as it is now.</summary>
    public AdSessionState Observe(string sessionId, AdEventKind kind, DateTimeOffset at)
    {
        // Updated in place, in the table's own storage: nothing else touches the table until this returns.
        ref var session = ref CollectionsMarshal.GetValueRefOrAddDefault(_open, Key(sessionId), out var exists);
        if (!exists)
        {
            session.FirstEventAt = at;
            session.LastEventAt = at;
            counters.Sessions++;
            if (kind != AdEventKind.Impression) counters.MissingImpression++;
        }
        if (at > session.LastEventAt) session.LastEventAt = at;
        switch (kind)
        {
            case AdEventKind.Impression:
                session.ImpressionAt ??= at;
                break;
            case AdEventKind.FirstQuartile: session.Quartiles |= 1; break;
            case AdEventKind.Midpoint: session.Quartiles |= 2; break;
            case AdEventKind.ThirdQuartile: session.Quartiles |= 4; break;
            case AdEventKind.Complete:
                if (!session.Completed) counters.Completed++;
                session.Completed = true;
                break;
            case AdEventKind.Skip:
                if (!session.Skipped) counters.Skipped++;
                session.Skipped = true;
                break;
            case AdEventKind.Click:
                if (session.Clicks == 0) counters.Clicked++;
                session.Clicks++;
                break;
        }
        return session;
    }

    /// <summary>Closes sessions idle longer than the timeout at <paramref name="now"/> (event time), then the oldest beyond the bound.</summary>
    public int Expire(DateTimeOffset now)
    {
        var cutoff = (now - timeout).UtcTicks;
        var finishedCutoff = (now - (finishedGrace < timeout ? finishedGrace : timeout)).UtcTicks;
        var stale = _open.Where(s => s.Value.LastTicks < cutoff || (s.Value.Finished && s.Value.LastTicks < finishedCutoff))
            .Select(s => s.Key).ToList();
        foreach (var id in stale) _open.Remove(id);
        var removed = stale.Count;
        if (_open.Count > maxSessions)
        {
            var excess = _open.OrderBy(s => s.Value.LastTicks).Take(_open.Count - maxSessions).Select(s => s.Key).ToList();
            foreach (var id in excess) _open.Remove(id);
            removed += excess.Count;
        }
        return removed;
    }

    /// <summary>
    /// The open sessions, packed: <c>format (2) | count varint | base ticks varint</c>, then per session its key (8 bytes),
    /// its first event's ticks after the base, its last event's after its first, its impression's (0: none, else the
    /// zigzag difference from its first, plus one), quartiles and flags in one byte, and its clicks: 20 bytes or so
    /// where the fixed records took 36. Records of the older form are 36 bytes each, so that form's length is a
    /// multiple of 36; this one is padded with a byte when its length would be one.
    /// </summary>
    public byte[] Export()
    {
        long baseTicks = 0;
        var first = true;
        foreach (var (_, s) in _open)
            if (first || s.FirstTicks < baseTicks) (baseTicks, first) = (s.FirstTicks, false);
        var length = 1 + Varint.Length((ulong)_open.Count) + Varint.Length((ulong)baseTicks);
        foreach (var (_, s) in _open)
            length += 8 + Varint.Length((ulong)(s.FirstTicks - baseTicks)) + Varint.Length((ulong)(s.LastTicks - s.FirstTicks))
                + Varint.Length(ImpressionOffset(s)) + 1 + Varint.Length((ulong)s.Clicks);
        if (length % PackedSize == 0) length++;
        var bytes = new byte[length];
        bytes[0] = PackFormat;
        var offset = 1 + Varint.Write(bytes.AsSpan(1), (ulong)_open.Count);
        offset += Varint.Write(bytes.AsSpan(offset), (ulong)baseTicks);
        foreach (var (key, s) in _open)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(offset), key);
            offset += 8;
            offset += Varint.Write(bytes.AsSpan(offset), (ulong)(s.FirstTicks - baseTicks));
            offset += Varint.Write(bytes.AsSpan(offset), (ulong)(s.LastTicks - s.FirstTicks));
            offset += Varint.Write(bytes.AsSpan(offset), ImpressionOffset(s));
            bytes[offset++] = (byte)(s.Quartiles | (s.Completed ? 8 : 0) | (s.Skipped ? 16 : 0));
            offset += Varint.Write(bytes.AsSpan(offset), (ulong)s.Clicks);
        }
        return bytes;
    }

    private static ulong ImpressionOffset(AdSessionState s) => s.ImpressionAt is { } at ? Varint.ZigZag(at.UtcTicks - s.FirstTicks) + 1 : 0;

    private const byte PackFormat = 2;
    private const string Form = "ad sessions";

    /// <summary>Restores what <see cref="Export"/> wrote, or the 36-byte records of states written before it.</summary>
    public void Import(byte[]? packed)
    {
        _open.Clear();
        if (packed is null || packed.Length == 0) return;
        if (packed.Length % PackedSize == 0)
        {
            ImportRecords(packed);
            return;
        }
        if (packed[0] != PackFormat) throw new InvalidDataException($"{Form}: unknown format {packed[0]}");
        var span = packed.AsSpan();
        var offset = 1;
        var count = Varint.Read(span, ref offset, Form);
        if (count > (ulong)(packed.Length - offset) / 12) throw new InvalidDataException($"{Form}: {count} sessions do not fit in {packed.Length} bytes");
        var baseTicks = (long)Varint.Read(span, ref offset, Form);
        _open.EnsureCapacity((int)count);
        for (var i = 0UL; i < count; i++)
        {
            if (offset + 8 > span.Length) throw new InvalidDataException($"{Form} end inside session {i}");
            var key = BinaryPrimitives.ReadInt64LittleEndian(span[offset..]);
            offset += 8;
            var firstTicks = baseTicks + (long)Varint.Read(span, ref offset, Form);
            var lastTicks = firstTicks + (long)Varint.Read(span, ref offset, Form);
            var impression = Varint.Read(span, ref offset, Form);
            if (offset >= span.Length) throw new InvalidDataException($"{Form} end inside session {i}");
            var flags = span[offset++];
            var clicks = Varint.Read(span, ref offset, Form);
            _open[key] = new AdSessionState
            {
                ImpressionAt = impression == 0 ? null : new DateTimeOffset(firstTicks + Varint.UnZigZag(impression - 1), TimeSpan.Zero),
                FirstEventAt = new DateTimeOffset(firstTicks, TimeSpan.Zero),
                LastEventAt = new DateTimeOffset(lastTicks, TimeSpan.Zero),
                Quartiles = flags & 7,
                Completed = (flags & 8) != 0,
                Skipped = (flags & 16) != 0,
                Clicks = (int)Math.Min(clicks, int.MaxValue),
            };
        }
        // The padding byte, at most.
        if (packed.Length - offset > 1) throw new InvalidDataException($"{Form}: {packed.Length - offset} bytes after the last session");
    }

    private void ImportRecords(byte[] packed)
    {
        _open.EnsureCapacity(packed.Length / PackedSize);
        for (var span = packed.AsSpan(); span.Length >= PackedSize; span = span[PackedSize..])
        {
            var impression = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
            _open[BinaryPrimitives.ReadInt64LittleEndian(span)] = new AdSessionState
            {
                ImpressionAt = impression == 0 ? null : new DateTimeOffset(impression, TimeSpan.Zero),
                FirstEventAt = new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(span[16..]), TimeSpan.Zero),
                LastEventAt = new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(span[24..]), TimeSpan.Zero),
                Quartiles = span[32],
                Completed = (span[33] & 1) != 0,
                Skipped = (span[33] & 2) != 0,
                Clicks = BinaryPrimitives.ReadUInt16LittleEndian(span[34..]),
            };
        }
    }
}
