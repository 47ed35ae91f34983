using System.Buffers.Binary;
using System.Text;
using Keystone.Events;

namespace Keystone.Ingest;

/// <summary>
/// The binary form of a batch's events inside a stream message. Every hop of a memory or queue stream serializes,
/// copies and deserializes its messages; with the events as objects that cost about a microsecond per event per
/// hop (ten strings each, with reference tracking). As one byte array with a per-batch string table (event types,
/// services, regions and metadata keys repeat across a batch), a hop is a memory copy and the decode is cheap.
///
/// Layout: magic 'K' 1, count, string table (count, then length-prefixed UTF-8), then per event: 16-byte id,
/// UTC ticks (8), offset minutes (2), indexes of type, version, service, device+1, region+1 (0 = absent),
/// payload length and bytes, metadata count and (key index, value index) pairs. Integers are 7-bit varints.
/// </summary>
public static class EventBatchCodec
{
    private const byte Magic = (byte)'K';
    private const byte FormatVersion = 1;

    public static byte[] Encode(IReadOnlyList<KeystoneEvent> events)
    {
        // Pass 1: intern strings and measure, so the output is allocated once at its exact size.
        var table = new Dictionary<string, int>(StringComparer.Ordinal);
        var strings = new List<string>();
        int Intern(string s)
        {
            if (!table.TryGetValue(s, out var index))
            {
                index = strings.Count;
                table[s] = index;
                strings.Add(s);
            }
            return index;
        }

        var size = 2 + VarintLength(events.Count);
        foreach (var e in events)
        {
            size += 26
                + VarintLength(Intern(e.EventType)) + VarintLength(Intern(e.Version)) + VarintLength(Intern(e.Source.Service))
                + VarintLength(e.Source.DeviceType is null ? 0 : Intern(e.Source.DeviceType) + 1)
                + VarintLength(e.Source.Region is null ? 0 : Intern(e.Source.Region) + 1)
                + VarintLength(e.Payload.Length) + e.Payload.Length
                + VarintLength(e.Metadata.Count);
            foreach (var (k, v) in e.Metadata) size += VarintLength(Intern(k)) + VarintLength(Intern(v));
        }
        size += VarintLength(strings.Count);
        var utf8Lengths = new int[strings.Count];
        for (var i = 0; i < strings.Count; i++)
        {
            utf8Lengths[i] = Encoding.UTF8.GetByteCount(strings[i]);
            size += VarintLength(utf8Lengths[i]) + utf8Lengths[i];
        }

        // Pass 2: write.
        var output = new byte[size];
        var span = output.AsSpan();
        span[0] = Magic;
        span[1] = FormatVersion;
        var p = 2;
        p += WriteVarint(span[p..], events.Count);
        p += WriteVarint(span[p..], strings.Count);
        for (var i = 0; i < strings.Count; i++)
        {
            p += WriteVarint(span[p..], utf8Lengths[i]);
            p += Encoding.UTF8.GetBytes(strings[i], span[p..]);
        }
        foreach (var e in events)
        {
            e.EventId.TryWriteBytes(span[p..]);
            BinaryPrimitives.WriteInt64LittleEndian(span[(p + 16)..], e.Timestamp.UtcTicks);
            BinaryPrimitives.WriteInt16LittleEndian(span[(p + 24)..], (short)e.Timestamp.Offset.TotalMinutes);
            p += 26;
            p += WriteVarint(span[p..], table[e.EventType]);
            p += WriteVarint(span[p..], table[e.Version]);
            p += WriteVarint(span[p..], table[e.Source.Service]);
            p += WriteVarint(span[p..], e.Source.DeviceType is null ? 0 : table[e.Source.DeviceType] + 1);
            p += WriteVarint(span[p..], e.Source.Region is null ? 0 : table[e.Source.Region] + 1);
            var payload = e.Payload.Utf8;
            p += WriteVarint(span[p..], payload.Length);
            payload.CopyTo(span[p..]);
            p += payload.Length;
            p += WriteVarint(span[p..], e.Metadata.Count);
            foreach (var (k, v) in e.Metadata)
            {
                p += WriteVarint(span[p..], table[k]);
                p += WriteVarint(span[p..], table[v]);
            }
        }
        if (p != size) throw new InvalidOperationException($"event batch encoder wrote {p} bytes, expected {size}");
        return output;
    }

    public static KeystoneEvent[] Decode(ReadOnlySpan<byte> data) => Decode(data, 0);

    /// <summary>Decodes the events from index <paramref name="from"/> on, stepping over the earlier ones without building them.</summary>
    public static KeystoneEvent[] Decode(ReadOnlySpan<byte> data, int from)
    {
        var position = ReadHeader(data, out var count, out var strings);
        from = Math.Clamp(from, 0, count);
        for (var n = 0; n < from; n++) Skip(data, ref position);

        var sources = new Dictionary<(int, int, int), EventSource>();
        var events = new KeystoneEvent[count - from];
        for (var n = 0; n < events.Length; n++)
        {
            var id = new Guid(data.Slice(position, 16));
            var ticks = BinaryPrimitives.ReadInt64LittleEndian(data[(position + 16)..]);
            var offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(data[(position + 24)..]));
            position += 26;
            var type = strings[ReadVarint(data, ref position)];
            var version = strings[ReadVarint(data, ref position)];
            var service = ReadVarint(data, ref position);
            var device = ReadVarint(data, ref position);
            var region = ReadVarint(data, ref position);
            if (!sources.TryGetValue((service, device, region), out var source))
            {
                source = new EventSource(strings[service], device == 0 ? null : strings[device - 1], region == 0 ? null : strings[region - 1]);
                sources[(service, device, region)] = source;
            }
            var payloadLength = ReadVarint(data, ref position);
            var payload = Payload.FromTrustedCompactJson(data.Slice(position, payloadLength).ToArray());
            position += payloadLength;
            var metadataCount = ReadVarint(data, ref position);
            var metadata = EventMetadata.Empty;
            if (metadataCount > 0)
            {
                var entries = new KeyValuePair<string, string>[metadataCount];
                for (var m = 0; m < metadataCount; m++)
                {
                    var key = strings[ReadVarint(data, ref position)];
                    entries[m] = new(key, strings[ReadVarint(data, ref position)]);
                }
                metadata = new EventMetadata(entries);
            }
            var timestamp = new DateTimeOffset(ticks + offset.Ticks, offset);
            events[n] = new KeystoneEvent(id, type, timestamp, version, source, payload, metadata);
        }
        if (position != data.Length) throw new InvalidDataException($"event batch has {data.Length - position} trailing bytes");
        return events;
    }

    /// <summary>Each event's UTC time in ticks, read without decoding the events (what a tap needs to measure lag).</summary>
    public static long[] ReadUtcTicks(ReadOnlySpan<byte> data)
    {
        var position = ReadHeader(data, out var count, out _, readStrings: false);
        var ticks = new long[count];
        for (var n = 0; n < count; n++)
        {
            ticks[n] = BinaryPrimitives.ReadInt64LittleEndian(data[(position + 16)..]);
            Skip(data, ref position);
        }
        return ticks;
    }

    private static int ReadHeader(ReadOnlySpan<byte> data, out int count, out string[] strings, bool readStrings = true)
    {
        if (data.Length < 2 || data[0] != Magic || data[1] != FormatVersion)
            throw new InvalidDataException("not a Keystone event batch (bad magic or format version)");
        var position = 2;
        count = ReadVarint(data, ref position);
        var stringCount = ReadVarint(data, ref position);
        strings = readStrings ? new string[stringCount] : [];
        for (var i = 0; i < stringCount; i++)
        {
            var length = ReadVarint(data, ref position);
            if (readStrings) strings[i] = Encoding.UTF8.GetString(data.Slice(position, length));
            position += length;
        }
        return position;
    }

    private static void Skip(ReadOnlySpan<byte> data, ref int position)
    {
        position += 26;
        for (var i = 0; i < 5; i++) ReadVarint(data, ref position);
        // Not "position += ReadVarint(...)": that reads position before the call moves it past the length prefix.
        var payloadLength = ReadVarint(data, ref position);
        position += payloadLength;
        var metadataCount = ReadVarint(data, ref position);
        for (var m = 0; m < metadataCount * 2; m++) ReadVarint(data, ref position);
    }

    private static int WriteVarint(Span<byte> span, int value)
    {
        var v = (uint)value;
        var i = 0;
        while (v >= 0x80)
        {
            span[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        span[i++] = (byte)v;
        return i;
    }

    private static int VarintLength(int value)
    {
        var v = (uint)value;
        var n = 1;
        while (v >= 0x80)
        {
            v >>= 7;
            n++;
        }
        return n;
    }

    private static int ReadVarint(ReadOnlySpan<byte> data, ref int position)
    {
        uint result = 0;
        var shift = 0;
        while (true)
        {
            var b = data[position++];
            result |= (uint)(b & 0x7F) << shift;
            if (b < 0x80) return checked((int)result);
            shift += 7;
            if (shift > 28) throw new InvalidDataException("varint too long");
        }
    }
}
