using System.Buffers;
using K4os.Compression.LZ4;

namespace Keystone.Ingest;

/// <summary>LZ4 with K4os' self-describing "pickle" framing (it carries the uncompressed length).</summary>
public static class Lz4Codec
{
    public static byte[] Compress(ReadOnlySpan<byte> data) => LZ4Pickler.Pickle(data, LZ4Level.L00_FAST);

    /// <summary><see cref="Compress"/> into a buffer of the caller's (the SDK's pooled one).</summary>
    public static void Compress(ReadOnlySpan<byte> data, IBufferWriter<byte> output) => LZ4Pickler.Pickle(data, output, LZ4Level.L00_FAST);

    /// <summary>The most <see cref="Compress"/> can write for <paramref name="length"/> bytes (the frame's header included).</summary>
    public static int MaxCompressedLength(int length) => LZ4Codec.MaximumOutputSize(length) + 16;

    /// <summary>Decompresses, refusing anything that would expand beyond <paramref name="maxBytes"/> (a decompression bomb).</summary>
    public static byte[] Decompress(ReadOnlySpan<byte> data, int maxBytes)
    {
        // K4os pickles empty input as zero bytes.
        if (data.IsEmpty) return [];
        var result = new byte[DecompressedSize(data, maxBytes)];
        UnpickleInto(data, result);
        return result;
    }

    /// <summary>
    /// <see cref="Decompress"/> into an array rented from <see cref="ArrayPool{T}.Shared"/>, which the caller returns;
    /// the data is its first <paramref name="length"/> bytes. Ingest decodes a request from it and is done with it before
    /// the request's first await: a fresh array per request was the largest single allocation on the event path.
    /// </summary>
    public static byte[] DecompressRented(ReadOnlySpan<byte> data, int maxBytes, out int length)
    {
        length = data.IsEmpty ? 0 : DecompressedSize(data, maxBytes);
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            if (length > 0) UnpickleInto(data, rented.AsSpan(0, length));
            return rented;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(rented);
            throw;
        }
    }

    private static void UnpickleInto(ReadOnlySpan<byte> data, Span<byte> output)
    {
        try
        {
            LZ4Pickler.Unpickle(data, output);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"not a valid LZ4 frame: {e.Message}", e);
        }
    }

    private static int DecompressedSize(ReadOnlySpan<byte> data, int maxBytes)
    {
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
        return size;
    }
}
