using Keystone.Events;

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
/// The batch being filled, and the rules for when it must go: at a count, at a byte size (of the events as JSON,
/// the size the cluster limits), or when its first event has waited the linger time. Pure (the caller passes the
/// clock), so the flush triggers are unit-tested without timers.
/// </summary>
public sealed class BatchBuffer(int maxEvents, int maxBytes, TimeSpan linger)
{
    private readonly List<KeystoneEvent> _events = [];

    public int Count => _events.Count;
    public int Bytes { get; private set; }
    public DateTimeOffset? OpenedAt { get; private set; }

    /// <summary>When the linger expires for the current batch, or null when it is empty.</summary>
    public DateTimeOffset? DueAt => OpenedAt + linger;

    /// <summary>True when adding an event of <paramref name="size"/> bytes would break the byte limit (so flush first).</summary>
    public bool WouldOverflow(int size) => Count > 0 && Bytes + size + 1 > maxBytes;

    public void Add(KeystoneEvent e, int size, DateTimeOffset now)
    {
        if (Count == 0) OpenedAt = now;
        _events.Add(e);
        Bytes += size + 1;
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
        var batch = new PendingBatch([.. _events], OpenedAt ?? DateTimeOffset.MinValue);
        _events.Clear();
        Bytes = 0;
        OpenedAt = null;
        return batch;
    }
}

/// <summary>A batch ready to send, and when its first event arrived.</summary>
public sealed record PendingBatch(KeystoneEvent[] Events, DateTimeOffset OpenedAt)
{
    public int Count => Events.Length;
    public IEnumerable<Guid> EventIds => Events.Select(e => e.EventId);

    /// <summary>The events as newline-delimited JSON (what the dead-letter file and the CLI speak).</summary>
    public byte[] ToNdjson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(Math.Max(256, Events.Length * 512));
        EventJson.WriteNdjson(buffer, Events);
        return buffer.WrittenSpan.ToArray();
    }
}
