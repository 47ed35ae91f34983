namespace Keystone.Storage;

/// <summary>
/// LEB128 unsigned varints and zigzag for signed values: the packed checkpoint forms store times as differences, which
/// take one to five bytes instead of eight.
/// </summary>
public static class Varint
{
    public static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));

    public static long UnZigZag(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);

    public static int Length(ulong value)
    {
        var length = 1;
        while (value >= 0x80) { value >>= 7; length++; }
        return length;
    }

    /// <summary>Writes <paramref name="value"/> at the start of <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Write(Span<byte> destination, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads a varint at <paramref name="offset"/> and moves past it; <paramref name="what"/> names the form in the error.</summary>
    public static ulong Read(ReadOnlySpan<byte> source, ref int offset, string what)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (offset >= source.Length) throw new InvalidDataException($"{what} ends inside a number");
            var b = source[offset++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException($"{what} holds a number longer than 64 bits");
    }
}
