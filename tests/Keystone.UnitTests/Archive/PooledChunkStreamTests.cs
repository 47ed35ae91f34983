using Keystone.Archive;

namespace Keystone.UnitTests.Archive;

public class PooledChunkStreamTests
{
    private static byte[] ReadAll(Stream reader, int pieceSize)
    {
        using var copy = new MemoryStream();
        var piece = new byte[pieceSize];
        int n;
        while ((n = reader.Read(piece, 0, piece.Length)) > 0) copy.Write(piece, 0, n);
        return copy.ToArray();
    }

    private static (byte[] Data, PooledChunkStream Stream) Written()
    {
        var data = new byte[200_000];
        new Random(7).NextBytes(data);
        var stream = new PooledChunkStream();
        // Uneven pieces, so writes straddle the 64 KB chunks; single bytes too.
        var at = 0;
        foreach (var size in new[] { 1, 65_535, 2, 70_000, 1 })
        {
            if (size == 1) stream.WriteByte(data[at]);
            else stream.Write(data, at, size);
            at += size;
        }
        stream.Write(data.AsSpan(at));
        return (data, stream);
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(65_536)]
    [InlineData(100_003)]
    public void Writes_across_chunk_boundaries_read_back_in_order_whatever_the_read_size(int pieceSize)
    {
        var (data, stream) = Written();
        using var _ = stream;
        using var reader = stream.OpenRead();

        Assert.Equal(data.Length, stream.Length);
        Assert.Equal(data.Length, reader.Length);
        Assert.Equal(data, ReadAll(reader, pieceSize));
    }

    [Fact]
    public async Task A_reader_rewinds_for_a_retried_upload_and_seeks_anywhere()
    {
        var (data, stream) = Written();
        using var _ = stream;
        await using var reader = stream.OpenRead();
        var first = new byte[70_000];
        Assert.Equal(first.Length, await reader.ReadAsync(first));

        reader.Position = 0;
        Assert.Equal(data, ReadAll(reader, 4_096));

        reader.Seek(-10, SeekOrigin.End);
        Assert.Equal(data[^10..], ReadAll(reader, 100));
        reader.Seek(65_530, SeekOrigin.Begin);
        reader.Seek(2, SeekOrigin.Current);
        var straddling = new byte[8];
        Assert.Equal(8, reader.Read(straddling));
        Assert.Equal(data[65_532..65_540], straddling);
    }

    [Fact]
    public void An_empty_stream_reads_nothing_and_a_disposed_one_refuses_writes_and_reads()
    {
        var stream = new PooledChunkStream();
        var reader = stream.OpenRead();
        Assert.Equal(0, reader.Read(new byte[10]));
        stream.Dispose();
        Assert.Throws<ObjectDisposedException>(() => stream.Write([1, 2, 3]));
        Assert.Throws<ObjectDisposedException>(() => reader.Read(new byte[10]));
        Assert.Throws<ObjectDisposedException>(() => stream.OpenRead());
    }
}
