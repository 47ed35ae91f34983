using System.Buffers;

namespace Keystone.Client.Publishing;

public enum FlushReason
{
    None,
    Count,
    Bytes,
    Linger,
    Explicit,
    Shutdown,
}

/// <summary>
/// The batch being filled: NDJSON bytes plus the rules for when it must go. Pure (the caller passes the clock),
/// so the flush triggers are unit-tested without timers.
/// </summary>
public sealed class BatchBuffer(int maxEvents, int maxBytes, TimeSpan linger)
{
    private readonly ArrayBufferWriter<byte> _bytes = new(64 * 1024);
    private readonly List<Guid> _ids = [];

    public int Count => _ids.Count;
    public int Bytes => _bytes.WrittenCount;
    public DateTimeOffset? OpenedAt { get; private set; }
    public IReadOnlyList<Guid> EventIds => _ids;

    /// <summary>When the linger expires for the current batch, or null when it is empty.</summary>
    public DateTimeOffset? DueAt => OpenedAt + linger;

    /// <summary>True when adding an event of <paramref name="size"/> bytes would break the byte limit (so flush first).</summary>
    public bool WouldOverflow(int size) => Count > 0 && Bytes + size + 1 > maxBytes;

    public void Add(Guid eventId, ReadOnlySpan<byte> json, DateTimeOffset now)
    {
        if (Count == 0) OpenedAt = now;
        _bytes.Write(json);
        _bytes.Write("\n"u8);
        _ids.Add(eventId);
    }

    /// <summary>Why the batch must be sent now, or <see cref="FlushReason.None"/>.</summary>
    public FlushReason Check(DateTimeOffset now)
    {
        if (Count == 0) return FlushReason.None;
        if (Count >= maxEvents) return FlushReason.Count;
        if (Bytes >= maxBytes) return FlushReason.Bytes;
        if (now >= DueAt) return FlushReason.Linger;
        return FlushReason.None;
    }

    public PendingBatch Drain()
    {
        var batch = new PendingBatch(_bytes.WrittenSpan.ToArray(), [.. _ids], OpenedAt ?? DateTimeOffset.MinValue);
        _bytes.ResetWrittenCount();
        _ids.Clear();
        OpenedAt = null;
        return batch;
    }
}

/// <summary>A batch ready to send: NDJSON, the ids it holds, and when its first event arrived.</summary>
public sealed record PendingBatch(byte[] Ndjson, Guid[] EventIds, DateTimeOffset OpenedAt)
{
    public int Count => EventIds.Length;
}
