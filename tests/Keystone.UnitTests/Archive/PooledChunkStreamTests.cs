using Keystone.Archive;

namespace Keystone.UnitTests.Archive;

public class PooledChunkStreamTests
{
    [Fact]
    public void Writes_across_chunk_boundaries_come_back_as_one_array_in_order()
    {
        var data = new byte[200_000];
        new Random(7).NextBytes(data);
        using var stream = new PooledChunkStream();
        // Uneven pieces, so writes straddle the 64 KB chunks; single bytes too.
        var at = 0;
        foreach (var size in new[] { 1, 65_535, 2, 70_000, 1 })
        {
            if (size == 1) stream.WriteByte(data[at]);
            else stream.Write(data, at, size);
            at += size;
        }
        stream.Write(data.AsSpan(at));

        Assert.Equal(data.Length, stream.Length);
        Assert.Equal(data, stream.ToArray());
    }

    [Fact]
    public void An_empty_stream_is_an_empty_array_and_a_disposed_one_refuses_writes()
    {
        var stream = new PooledChunkStream();
        Assert.Empty(stream.ToArray());
        stream.Dispose();
        Assert.Throws<ObjectDisposedException>(() => stream.Write([1, 2, 3]));
    }
}
