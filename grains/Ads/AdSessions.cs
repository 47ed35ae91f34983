using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Keystone.Events;

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

    /// <summary>The open sessions as 36-byte records (key, impression, first and last event ticks, quartiles, flags, clicks).</summary>
    public byte[] Export()
    {
        var bytes = new byte[_open.Count * PackedSize];
        var span = bytes.AsSpan();
        foreach (var (key, s) in _open)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span, key);
            BinaryPrimitives.WriteInt64LittleEndian(span[8..], s.ImpressionAt?.UtcTicks ?? 0);
            BinaryPrimitives.WriteInt64LittleEndian(span[16..], s.FirstEventAt.UtcTicks);
            BinaryPrimitives.WriteInt64LittleEndian(span[24..], s.LastEventAt.UtcTicks);
            span[32] = (byte)s.Quartiles;
            span[33] = (byte)((s.Completed ? 1 : 0) | (s.Skipped ? 2 : 0));
            BinaryPrimitives.WriteUInt16LittleEndian(span[34..], (ushort)Math.Min(s.Clicks, ushort.MaxValue));
            span = span[PackedSize..];
        }
        return bytes;
    }

    public void Import(byte[]? packed)
    {
        _open.Clear();
        if (packed is null) return;
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
