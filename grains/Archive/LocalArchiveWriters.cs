using System.Collections.Concurrent;

namespace Keystone.Archive;

/// <summary>
/// The archive writers active in this silo. A stopping silo flushes them before Orleans deactivates its grains (see
/// the silo's <c>ArchiveShutdownFlush</c>): Orleans deactivates them all at once, the snapshot buckets that hold the
/// writers' state among them, so a writer that waited for its own deactivation to write could find no bucket left.
/// </summary>
public sealed class LocalArchiveWriters
{
    private readonly ConcurrentDictionary<int, IArchiveWriterGrain> _writers = new();

    public IReadOnlyCollection<IArchiveWriterGrain> Active => [.. _writers.Values];

    internal void Add(int partition, IArchiveWriterGrain writer) => _writers[partition] = writer;

    internal void Remove(int partition, IArchiveWriterGrain writer) =>
        ((ICollection<KeyValuePair<int, IArchiveWriterGrain>>)_writers).Remove(new(partition, writer));
}
