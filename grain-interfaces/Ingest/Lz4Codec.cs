using K4os.Compression.LZ4;

namespace Keystone.Ingest;

/// <summary>LZ4 with K4os' self-describing "pickle" framing (it carries the uncompressed length).</summary>
public static class Lz4Codec
{
    public static byte[] Compress(ReadOnlySpan<byte> data) => LZ4Pickler.Pickle(data, LZ4Level.L00_FAST);

    /// <summary>Decompresses, refusing anything that would expand beyond <paramref name="maxBytes"/> (a decompression bomb).</summary>
    public static byte[] Decompress(ReadOnlySpan<byte> data, int maxBytes)
    {
        // K4os pickles empty input as zero bytes.
        if (data.IsEmpty) return [];
        int size;
        try
        {
            size = LZ4Pickler.UnpickledSize(data);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"not a valid LZ4 frame: {e.Message}", e);
        }
        if (size > maxBytes)
            throw new InvalidDataException($"the batch expands to {size} bytes; the limit is {maxBytes} bytes");
        try
        {
            return LZ4Pickler.Unpickle(data);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"not a valid LZ4 frame: {e.Message}", e);
        }
    }
}
