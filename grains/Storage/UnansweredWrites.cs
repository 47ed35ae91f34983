using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Keystone.Storage;

/// <summary>
/// State writes whose answer never came (the bucket's silo died, or the call timed out): each may have been made
/// durable all the same. The writer's ETag stays the old version, so its next write is refused as stale, and without
/// this the writer would take its own write for another activation's: it deactivates, and what it held in memory
/// (another state of the same grain, its graph side) goes with it. Remembering what was sent lets the next write tell
/// its own write from a stranger's: if the stored state is the very bytes sent, at the version that write would have
/// made, it is this writer's, and the new write goes on top of it.
/// </summary>
/// <remarks>
/// Bounded: past <paramref name="capacity"/> pending entries a write is not remembered, and a conflict after it is
/// resolved as before (the activation deactivates and its operator replays). Entries leave at the key's next write.
/// </remarks>
public sealed class UnansweredWrites(int capacity = 10_000)
{
    private readonly record struct Sent(long ExpectedVersion, UInt128 Hash);

    private readonly ConcurrentDictionary<string, Sent> _sent = new(StringComparer.Ordinal);

    private long _unanswered, _recognised;

    public int Count => _sent.Count;

    /// <summary>Whether a write of <paramref name="key"/> went unanswered and its key has not been written since.</summary>
    public bool IsPending(string key) => _sent.ContainsKey(key);

    /// <summary>Writes that got no answer, and those of them found durable at the key's next write.</summary>
    public (long Unanswered, long Recognised) Counts => (Interlocked.Read(ref _unanswered), Interlocked.Read(ref _recognised));

    /// <summary>A write of <paramref name="data"/> expecting <paramref name="expectedVersion"/> got no answer.</summary>
    public void Unanswered(string key, long expectedVersion, ReadOnlySpan<byte> data)
    {
        Interlocked.Increment(ref _unanswered);
        if (_sent.Count >= capacity && !_sent.ContainsKey(key)) return;
        _sent[key] = new Sent(expectedVersion, Hash(data));
    }

    /// <summary>
    /// A write of <paramref name="key"/> expecting <paramref name="expectedVersion"/> was refused because the state is
    /// at <paramref name="currentVersion"/>: whether an unanswered write of this writer may have made that version,
    /// so that the stored state is worth comparing (<see cref="IsOwn"/>). An entry that cannot match is forgotten; one
    /// that may is kept until the comparison is made (<see cref="Answered"/>), so a failed read can be tried again.
    /// </summary>
    public bool MayBeOwn(string key, long expectedVersion, long currentVersion, out UInt128 hash)
    {
        hash = default;
        if (!_sent.TryGetValue(key, out var sent)) return false;
        if (sent.ExpectedVersion != expectedVersion || currentVersion != expectedVersion + 1)
        {
            _sent.TryRemove(key, out _);
            return false;
        }
        hash = sent.Hash;
        return true;
    }

    /// <summary>Whether <paramref name="stored"/>, the state now at the version after the expected one, is the unanswered write's.</summary>
    public bool IsOwn(UInt128 hash, ReadOnlySpan<byte> stored)
    {
        if (Hash(stored) != hash) return false;
        Interlocked.Increment(ref _recognised);
        return true;
    }

    /// <summary>The key was written (or refused) since: an older unanswered write of it no longer matters.</summary>
    public void Answered(string key)
    {
        // Every successful state write passes here: in a silo that never lost an answer, that costs a read.
        if (Interlocked.Read(ref _unanswered) == 0) return;
        _sent.TryRemove(key, out _);
    }

    private static UInt128 Hash(ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(data, digest);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest);
    }
}
