using System.IO.Compression;
using Keystone.Events;

namespace Keystone.Archive;

/// <summary>
/// One gzip member of JSON lines, ready to append to a lake blob, and how many events it holds. It keeps the pooled
/// arrays it was compressed into until it is disposed (once appended).
/// </summary>
public sealed class CompressedChunk(PooledChunkStream content, int events) : IDisposable
{
    public int Events { get; } = events;

    public long Length => content.Length;

    /// <summary>The member's bytes, readable (and rewindable) until the chunk is disposed.</summary>
    public Stream OpenRead() => content.OpenRead();

    public void Dispose() => content.Dispose();
}

/// <summary>
/// Events of one lake hour compressed as they arrive, to be appended at the next barrier. Before, a writer kept the
/// events themselves until the barrier and then serialised and compressed all of them at once: a checkpoint interval
/// of events (hundreds of thousands at saturation) survived every young collection meanwhile, and the barrier spent
/// a second or more of CPU in one go, which stalled the rest of the silo (publish → grain p99 went from about 200 ms
/// to 700 ms during each barrier, at 10,000 events/s). Compressed as they come, they cost about 30 bytes each until
/// the barrier, and the barrier only closes the member and appends it.
/// </summary>
/// <remarks>
/// A member is closed once its uncompressed lines pass <paramref name="maxRawBytes"/> (gzip of JSON never grows it),
/// so every chunk fits one append block. Concatenated members are one valid gzip file, as the lake's readers expect.
/// </remarks>
public sealed class CompressedLines(int maxRawBytes) : IDisposable
{
    private readonly List<CompressedChunk> _closed = [];
    private PooledChunkStream? _buffer;
    // Lines reach the compressor in blocks of this size, not one by one: each write to a GZipStream is a call into
    // zlib (and its lock), and a line is two writes (its JSON, then '\n'). Per line, that call was most of a seal's
    // CPU (stop 43's profile).
    private BufferedStream? _gzip;
    internal const int StagingBytes = 32 * 1024;
    private long _raw;
    private int _openEvents;

    /// <summary>Events added and not yet appended.</summary>
    public int Events { get; private set; }

    public void Add(KeystoneEvent e)
    {
        var gzip = Open();
        _raw += EventJson.WriteLine(gzip, e);
        Added();
    }

    /// <summary>Adds an event still in its batch record (length prefix included), without decoding it.</summary>
    public void AddRecord(ReadOnlySpan<byte> record)
    {
        var gzip = Open();
        _raw += EventJson.WriteRecordLine(gzip, record);
        Added();
    }

    // Called before adding to _raw: it starts a member at 0.
    private Stream Open()
    {
        if (_gzip is null)
        {
            _buffer = new PooledChunkStream();
            _gzip = new BufferedStream(new GZipStream(_buffer, CompressionLevel.Fastest, leaveOpen: true), StagingBytes);
            _raw = 0;
            _openEvents = 0;
        }
        return _gzip;
    }

    private void Added()
    {
        _openEvents++;
        Events++;
        if (_raw >= maxRawBytes) Close();
    }

    /// <summary>Closes the open member: what is added afterwards goes to a new one.</summary>
    public void Seal() => Close();

    /// <summary>Closed members not yet appended, oldest first.</summary>
    public IReadOnlyList<CompressedChunk> Sealed => _closed;

    /// <summary>The oldest sealed member was appended: it is dropped. One that failed stays, for the next attempt.</summary>
    public void Appended()
    {
        Events -= _closed[0].Events;
        _closed[0].Dispose();
        _closed.RemoveAt(0);
    }

    private void Close()
    {
        if (_gzip is null) return;
        // Flushes the staged lines into the compressor, then closes it (the gzip trailer goes to the buffer).
        _gzip.Dispose();
        _closed.Add(new CompressedChunk(_buffer!, _openEvents));
        _gzip = null;
        _buffer = null;
    }

    public void Dispose()
    {
        _gzip?.Dispose();
        _buffer?.Dispose();
        foreach (var chunk in _closed) chunk.Dispose();
        _closed.Clear();
    }
}
