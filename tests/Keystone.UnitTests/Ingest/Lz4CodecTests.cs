using System.Text;
using Keystone.Ingest;

namespace Keystone.UnitTests.Ingest;

public class Lz4CodecTests
{
    private static readonly byte[] Text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 500).Select(i => $"{{\"event_type\":\"video.play.started\",\"n\":{i}}}\n")));

    // Ingest decompresses into a pooled array (DecompressRented); both forms must decode and refuse alike.
    private static byte[] Unpack(bool rented, ReadOnlySpan<byte> data, int maxBytes)
    {
        if (!rented) return Lz4Codec.Decompress(data, maxBytes);
        var buffer = Lz4Codec.DecompressRented(data, maxBytes, out var length);
        try
        {
            Assert.True(buffer.Length >= length);
            return buffer.AsSpan(0, length).ToArray();
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Round_trip_returns_the_same_bytes_and_compresses_repetitive_json(bool rented)
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.True(packed.Length < Text.Length / 3, $"{packed.Length} of {Text.Length}");
        Assert.Equal(Text, Unpack(rented, packed, Text.Length));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Empty_input_round_trips(bool rented)
    {
        var packed = Lz4Codec.Compress([]);
        Assert.Empty(Unpack(rented, packed, 0));
        Assert.Empty(Unpack(rented, [], 0));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_frame_that_expands_beyond_the_limit_is_refused_before_decoding(bool rented)
    {
        var bomb = Lz4Codec.Compress(new byte[10_000_000]);
        Assert.True(bomb.Length < 100_000);

        var e = Assert.Throws<InvalidDataException>(() => Unpack(rented, bomb, 1_000_000));
        Assert.Equal("the batch expands to 10000000 bytes; the limit is 1000000 bytes", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_limit_is_inclusive(bool rented)
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.Equal(Text.Length, Unpack(rented, packed, Text.Length).Length);
        Assert.Throws<InvalidDataException>(() => Unpack(rented, packed, Text.Length - 1));
    }

    [Theory]
    [InlineData("\u00ff", false)]
    [InlineData("not lz4 at all, just text", false)]
    [InlineData("\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff", false)]
    [InlineData("\u00ff", true)]
    [InlineData("not lz4 at all, just text", true)]
    [InlineData("\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff", true)]
    public void Garbage_is_invalid_data(string garbage, bool rented)
    {
        var bytes = Encoding.Latin1.GetBytes(garbage);
        var e = Assert.Throws<InvalidDataException>(() => Unpack(rented, bytes, 1 << 20));
        Assert.NotEmpty(e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_truncated_frame_is_invalid_data(bool rented)
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.Throws<InvalidDataException>(() => Unpack(rented, packed.AsSpan(0, packed.Length / 2), 1 << 20));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_corrupted_frame_is_invalid_data(bool rented)
    {
        var packed = Lz4Codec.Compress(Text);
        for (var i = 8; i < packed.Length; i += 7) packed[i] ^= 0x5A;
        Assert.Throws<InvalidDataException>(() => Unpack(rented, packed, 1 << 20));
    }
}
