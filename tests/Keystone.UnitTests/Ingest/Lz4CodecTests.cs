using System.Text;
using Keystone.Ingest;

namespace Keystone.UnitTests.Ingest;

public class Lz4CodecTests
{
    private static readonly byte[] Text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 500).Select(i => $"{{\"event_type\":\"video.play.started\",\"n\":{i}}}\n")));

    [Fact]
    public void Round_trip_returns_the_same_bytes_and_compresses_repetitive_json()
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.True(packed.Length < Text.Length / 3, $"{packed.Length} of {Text.Length}");
        Assert.Equal(Text, Lz4Codec.Decompress(packed, Text.Length));
    }

    [Fact]
    public void Empty_input_round_trips()
    {
        var packed = Lz4Codec.Compress([]);
        Assert.Empty(Lz4Codec.Decompress(packed, 0));
        Assert.Empty(Lz4Codec.Decompress([], 0));
    }

    [Fact]
    public void A_frame_that_expands_beyond_the_limit_is_refused_before_decoding()
    {
        var bomb = Lz4Codec.Compress(new byte[10_000_000]);
        Assert.True(bomb.Length < 100_000);

        var e = Assert.Throws<InvalidDataException>(() => Lz4Codec.Decompress(bomb, 1_000_000));
        Assert.Equal("the batch expands to 10000000 bytes; the limit is 1000000 bytes", e.Message);
    }

    [Fact]
    public void The_limit_is_inclusive()
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.Equal(Text.Length, Lz4Codec.Decompress(packed, Text.Length).Length);
        Assert.Throws<InvalidDataException>(() => Lz4Codec.Decompress(packed, Text.Length - 1));
    }

    [Theory]
    [InlineData("\u00ff")]
    [InlineData("not lz4 at all, just text")]
    [InlineData("\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff\u00ff")]
    public void Garbage_is_invalid_data(string garbage)
    {
        var bytes = Encoding.Latin1.GetBytes(garbage);
        var e = Assert.Throws<InvalidDataException>(() => Lz4Codec.Decompress(bytes, 1 << 20));
        Assert.NotEmpty(e.Message);
    }

    [Fact]
    public void A_truncated_frame_is_invalid_data()
    {
        var packed = Lz4Codec.Compress(Text);
        Assert.Throws<InvalidDataException>(() => Lz4Codec.Decompress(packed.AsSpan(0, packed.Length / 2), 1 << 20));
    }

    [Fact]
    public void A_corrupted_frame_is_invalid_data()
    {
        var packed = Lz4Codec.Compress(Text);
        for (var i = 8; i < packed.Length; i += 7) packed[i] ^= 0x5A;
        Assert.Throws<InvalidDataException>(() => Lz4Codec.Decompress(packed, 1 << 20));
    }
}
