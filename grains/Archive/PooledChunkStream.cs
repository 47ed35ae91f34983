using System.Buffers;

namespace Keystone.Archive;

/// <summary>
/// A write-only stream into pooled 64 KB arrays. A gzip member grows to hundreds of kilobytes; in a MemoryStream that
/// meant doubling copies on the large-object heap for every member (a thirtieth of what the silo allocated at
/// saturation). Here the only array allocated is the finished member's (<see cref="ToArray"/>).
/// </summary>
public sealed class PooledChunkStream : Stream
{
    private const int ChunkSize = 64 * 1024; // under the large-object threshold
    private readonly List<byte[]> _chunks = [];
    private int _lastUsed = ChunkSize;
    private long _length;
    private bool _disposed;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!buffer.IsEmpty)
        {
            if (_lastUsed == ChunkSize)
            {
                _chunks.Add(ArrayPool<byte>.Shared.Rent(ChunkSize));
                _lastUsed = 0;
            }
            var n = Math.Min(buffer.Length, ChunkSize - _lastUsed);
            buffer[..n].CopyTo(_chunks[^1].AsSpan(_lastUsed));
            _lastUsed += n;
            _length += n;
            buffer = buffer[n..];
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>What was written, as one array of exactly that length.</summary>
    public byte[] ToArray()
    {
        var result = new byte[_length];
        var at = 0;
        for (var i = 0; i < _chunks.Count; i++)
        {
            var n = i == _chunks.Count - 1 ? _lastUsed : ChunkSize;
            _chunks[i].AsSpan(0, n).CopyTo(result.AsSpan(at));
            at += n;
        }
        return result;
    }

    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            foreach (var chunk in _chunks) ArrayPool<byte>.Shared.Return(chunk);
            _chunks.Clear();
            _lastUsed = ChunkSize;
            _length = 0;
        }
        base.Dispose(disposing);
    }
}
