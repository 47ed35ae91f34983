using System.Buffers.Binary;
using System.Text;
using Keystone.Events;

namespace Keystone.Ingest;

/// <summary>
/// The binary form of a batch's events inside a stream message (and of the SDK's batches). Every hop of a memory or
/// queue stream serializes, copies and deserializes its messages; with the events as objects that costs about a
/// microsecond per event per hop (ten strings each, with reference tracking). As one byte array it is a copy.
///
/// Each event is a self-contained, length-prefixed record, so a router can move an event it does not change into
/// another batch by copying its bytes, and a reader can step over events without decoding them.
///
/// Layout: 'K', format 2, event count; then per event: record length, 16-byte id, UTC ticks (8), offset minutes (2),
/// strings type, version, service, device?, region?, the payload's compact JSON, metadata count and key/value strings.
/// Integers are 7-bit varints; a string is its UTF-8 length then bytes; an optional string stores length+1 (0 = absent).
/// </summary>
public static class EventBatchCodec
{
    private const byte Magic = (byte)'K';
    private const byte FormatVersion = 2;
    private const int FixedPart = 16 + 8 + 2;

    /// <summary>Bytes an event takes in a batch, including its length prefix.</summary>
    public static int EncodedSize(KeystoneEvent e)
    {
        var body = BodySize(e);
        return VarintLength(body) + body;
    }

    private static int BodySize(KeystoneEvent e)
    {
        var size = FixedPart
                   + StringSize(e.EventType) + StringSize(e.Version) + StringSize(e.Source.Service)
                   + OptionalSize(e.Source.DeviceType) + OptionalSize(e.Source.Region)
                   + VarintLength(e.Payload.Length) + e.Payload.Length
                   + VarintLength(e.Metadata.Count);
        foreach (var (k, v) in e.Metadata) size += StringSize(k) + StringSize(v);
        return size;
    }

    /// <summary>Writes one record (length prefix included); returns the bytes written.</summary>
    public static int WriteRecord(Span<byte> destination, KeystoneEvent e)
    {
        var body = BodySize(e);
        var p = WriteVarint(destination, body);
        var start = p;
        e.EventId.TryWriteBytes(destination[p..]);
        BinaryPrimitives.WriteInt64LittleEndian(destination[(p + 16)..], e.Timestamp.UtcTicks);
        BinaryPrimitives.WriteInt16LittleEndian(destination[(p + 24)..], (short)e.Timestamp.Offset.TotalMinutes);
        p += FixedPart;
        p += WriteString(destination[p..], e.EventType);
        p += WriteString(destination[p..], e.Version);
        p += WriteString(destination[p..], e.Source.Service);
        p += WriteOptional(destination[p..], e.Source.DeviceType);
        p += WriteOptional(destination[p..], e.Source.Region);
        var payload = e.Payload.Utf8;
        p += WriteVarint(destination[p..], payload.Length);
        payload.CopyTo(destination[p..]);
        p += payload.Length;
        p += WriteVarint(destination[p..], e.Metadata.Count);
        foreach (var (k, v) in e.Metadata)
        {
            p += WriteString(destination[p..], k);
            p += WriteString(destination[p..], v);
        }
        if (p - start != body) throw new InvalidOperationException($"event record is {p - start} bytes, expected {body}");
        return p;
    }

    public static int HeaderSize(int count) => 2 + VarintLength(count);

    public static int WriteHeader(Span<byte> destination, int count)
    {
        destination[0] = Magic;
        destination[1] = FormatVersion;
        return 2 + WriteVarint(destination[2..], count);
    }

    public static byte[] Encode(IReadOnlyList<KeystoneEvent> events)
    {
        var output = new byte[EncodedSize(events)];
        Encode(events, output);
        return output;
    }

    /// <summary>The size of the batch <see cref="Encode(IReadOnlyList{KeystoneEvent}, Span{byte})"/> writes.</summary>
    public static int EncodedSize(IReadOnlyList<KeystoneEvent> events)
    {
        var size = HeaderSize(events.Count);
        for (var i = 0; i < events.Count; i++) size += EncodedSize(events[i]);
        return size;
    }

    /// <summary>Writes the batch into <paramref name="destination"/> (at least <see cref="EncodedSize(IReadOnlyList{KeystoneEvent})"/> bytes); returns the bytes written.</summary>
    public static int Encode(IReadOnlyList<KeystoneEvent> events, Span<byte> destination)
    {
        var p = WriteHeader(destination, events.Count);
        for (var i = 0; i < events.Count; i++) p += WriteRecord(destination[p..], events[i]);
        return p;
    }

    /// <summary>Reads the header; returns the event count and where the first record starts.</summary>
    public static int ReadHeader(ReadOnlySpan<byte> data, out int count)
    {
        if (data.Length < 3 || data[0] != Magic || data[1] != FormatVersion)
            throw new InvalidDataException("not a Keystone event batch (bad magic or format version)");
        var position = 2;
        count = ReadVarint(data, ref position);
        return position;
    }

    /// <summary>Where each record (length prefix included) lies in the batch.</summary>
    public static (int Start, int Length)[] RecordRanges(ReadOnlySpan<byte> data)
    {
        var position = ReadHeader(data, out var count);
        var ranges = new (int, int)[count];
        for (var n = 0; n < count; n++)
        {
            var start = position;
            var body = ReadVarint(data, ref position);
            if (body < FixedPart || position + body > data.Length) throw new InvalidDataException($"event record {n} overruns the batch");
            position += body;
            ranges[n] = (start, position - start);
        }
        if (position != data.Length) throw new InvalidDataException($"event batch has {data.Length - position} trailing bytes");
        return ranges;
    }

    public static KeystoneEvent[] Decode(ReadOnlySpan<byte> data) => Decode(data, 0);

    /// <summary>Decodes the events from index <paramref name="from"/> on, stepping over the earlier records.</summary>
    public static KeystoneEvent[] Decode(ReadOnlySpan<byte> data, int from)
    {
        var position = ReadHeader(data, out var count);
        from = Math.Clamp(from, 0, count);
        for (var n = 0; n < from; n++)
        {
            // Two statements on purpose: "position += ReadVarint(ref position)" would add to the value read before the call.
            var skip = ReadVarint(data, ref position);
            position += skip;
        }

        var events = new KeystoneEvent[count - from];
        EventSource? lastSource = null;
        for (var n = 0; n < events.Length; n++)
        {
            var body = ReadVarint(data, ref position);
            var end = position + body;
            if (body < FixedPart || end > data.Length) throw new InvalidDataException($"event record {from + n} overruns the batch");
            var id = new Guid(data.Slice(position, 16));
            var ticks = BinaryPrimitives.ReadInt64LittleEndian(data[(position + 16)..]);
            var offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(data[(position + 24)..]));
            position += FixedPart;
            var type = ReadInterned(data, ref position);
            var version = ReadInterned(data, ref position);
            var service = ReadInterned(data, ref position);
            var device = ReadOptional(data, ref position);
            var region = ReadOptional(data, ref position);
            // Consecutive events mostly share their source; reuse the object rather than allocate one per event.
            var source = lastSource is not null && ReferenceEquals(lastSource.Service, service) && ReferenceEquals(lastSource.DeviceType, device) && ReferenceEquals(lastSource.Region, region)
                ? lastSource
                : lastSource = new EventSource(service, device, region);
            var payloadLength = ReadVarint(data, ref position);
            var payload = Payload.FromTrustedCompactJson(data.Slice(position, payloadLength).ToArray());
            position += payloadLength;
            var metadataCount = ReadVarint(data, ref position);
            var metadata = EventMetadata.Empty;
            if (metadataCount > 0)
            {
                if (metadataCount > 1024) throw new InvalidDataException("too many metadata entries");
                var entries = new KeyValuePair<string, string>[metadataCount];
                for (var m = 0; m < metadataCount; m++)
                {
                    var key = ReadInterned(data, ref position);
                    entries[m] = new(key, ReadString(data, ref position));
                }
                metadata = new EventMetadata(entries);
            }
            if (position != end) throw new InvalidDataException($"event record {from + n} has {end - position} unread bytes");
            events[n] = new KeystoneEvent(id, type, new DateTimeOffset(ticks + offset.Ticks, offset), version, source, payload, metadata);
        }
        if (position != data.Length) throw new InvalidDataException($"event batch has {data.Length - position} trailing bytes");
        return events;
    }

    /// <summary>The length of the record (length prefix included) that starts at <paramref name="start"/>: to step
    /// through a batch's records after <see cref="ReadHeader"/> without an array of their ranges.</summary>
    public static int RecordLength(ReadOnlySpan<byte> data, int start)
    {
        var position = start;
        var body = ReadVarint(data, ref position);
        if (body < FixedPart || position + body > data.Length) throw new InvalidDataException("event record overruns the batch");
        return position + body - start;
    }

    /// <summary>A record's id and time, read without decoding it (<paramref name="record"/> as <see cref="RecordRanges"/>
    /// gives it, length prefix included).</summary>
    public static (Guid Id, DateTimeOffset Timestamp) ReadKey(ReadOnlySpan<byte> record)
    {
        var position = 0;
        var body = ReadVarint(record, ref position);
        if (body < FixedPart || position + body > record.Length) throw new InvalidDataException("event record overruns its range");
        var ticks = BinaryPrimitives.ReadInt64LittleEndian(record[(position + 16)..]);
        var offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(record[(position + 24)..]));
        return (new Guid(record.Slice(position, 16)), new DateTimeOffset(ticks + offset.Ticks, offset));
    }

    /// <summary>One record (length prefix included) as an event.</summary>
    public static KeystoneEvent DecodeRecord(ReadOnlySpan<byte> record)
    {
        Span<byte> header = stackalloc byte[8];
        header[0] = Magic;
        header[1] = FormatVersion;
        var n = 2 + WriteVarint(header[2..], 1);
        var data = new byte[n + record.Length];
        header[..n].CopyTo(data);
        record.CopyTo(data.AsSpan(n));
        return Decode(data)[0];
    }

    /// <summary>
    /// Writes a record (length prefix included) as the JSON <see cref="EventJson.Write"/> writes for its event, straight
    /// from its bytes: the lake seals the fronting log this way, so an event is not decoded into objects a second time.
    /// </summary>
    public static void WriteJson(System.Text.Json.Utf8JsonWriter w, ReadOnlySpan<byte> record)
    {
        var position = 0;
        var body = ReadVarint(record, ref position);
        var end = position + body;
        if (body < FixedPart || end > record.Length) throw new InvalidDataException("event record overruns its range");
        var id = new Guid(record.Slice(position, 16));
        var ticks = BinaryPrimitives.ReadInt64LittleEndian(record[(position + 16)..]);
        var offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(record[(position + 24)..]));
        position += FixedPart;
        w.WriteStartObject();
        w.WriteString("event_id"u8, id);
        w.WriteString("event_type"u8, ReadSpan(record, ref position));
        EventJson.WriteTimestamp(w, "timestamp"u8, new DateTimeOffset(ticks + offset.Ticks, offset));
        w.WriteString("version"u8, ReadSpan(record, ref position));
        w.WriteStartObject("source"u8);
        w.WriteString("service"u8, ReadSpan(record, ref position));
        if (ReadOptionalSpan(record, ref position, out var device)) w.WriteString("device_type"u8, device);
        if (ReadOptionalSpan(record, ref position, out var region)) w.WriteString("region"u8, region);
        w.WriteEndObject();
        w.WritePropertyName("payload"u8);
        w.WriteRawValue(ReadSpan(record, ref position), skipInputValidation: true);
        var metadataCount = ReadVarint(record, ref position);
        w.WriteStartObject("metadata"u8);
        for (var m = 0; m < metadataCount; m++)
        {
            var key = ReadSpan(record, ref position);
            w.WriteString(key, ReadSpan(record, ref position));
        }
        w.WriteEndObject();
        w.WriteEndObject();
        if (position != end) throw new InvalidDataException($"event record has {end - position} unread bytes");
    }

    /// <summary>Whether a record (length prefix included) carries the metadata key, read without decoding it.</summary>
    public static bool HasMetadata(ReadOnlySpan<byte> record, ReadOnlySpan<byte> utf8Key)
    {
        var position = 0;
        ReadVarint(record, ref position);
        position += FixedPart;
        for (var i = 0; i < 3; i++) ReadSpan(record, ref position);
        ReadOptionalSpan(record, ref position, out _);
        ReadOptionalSpan(record, ref position, out _);
        ReadSpan(record, ref position);
        var count = ReadVarint(record, ref position);
        for (var m = 0; m < count; m++)
        {
            if (ReadSpan(record, ref position).SequenceEqual(utf8Key)) return true;
            ReadSpan(record, ref position);
        }
        return false;
    }

    private static ReadOnlySpan<byte> ReadSpan(ReadOnlySpan<byte> data, ref int position)
    {
        var length = ReadVarint(data, ref position);
        var span = data.Slice(position, length);
        position += length;
        return span;
    }

    private static bool ReadOptionalSpan(ReadOnlySpan<byte> data, ref int position, out ReadOnlySpan<byte> value)
    {
        var length = ReadVarint(data, ref position);
        value = length == 0 ? default : data.Slice(position, length - 1);
        if (length > 0) position += length - 1;
        return length > 0;
    }

    /// <summary>Each event's UTC time in ticks, read without decoding the events (what a tap needs to measure lag).</summary>
    public static long[] ReadUtcTicks(ReadOnlySpan<byte> data)
    {
        var position = ReadHeader(data, out var count);
        var ticks = new long[count];
        for (var n = 0; n < count; n++)
        {
            var body = ReadVarint(data, ref position);
            ticks[n] = BinaryPrimitives.ReadInt64LittleEndian(data[(position + 16)..]);
            position += body;
        }
        return ticks;
    }

    private static int StringSize(string s)
    {
        var bytes = Encoding.UTF8.GetByteCount(s);
        return VarintLength(bytes) + bytes;
    }

    private static int OptionalSize(string? s)
    {
        if (s is null) return 1;
        var bytes = Encoding.UTF8.GetByteCount(s);
        return VarintLength(bytes + 1) + bytes;
    }

    private static int WriteString(Span<byte> span, string s)
    {
        var bytes = Encoding.UTF8.GetByteCount(s);
        var p = WriteVarint(span, bytes);
        return p + Encoding.UTF8.GetBytes(s, span[p..]);
    }

    private static int WriteOptional(Span<byte> span, string? s)
    {
        if (s is null) return WriteVarint(span, 0);
        var bytes = Encoding.UTF8.GetByteCount(s);
        var p = WriteVarint(span, bytes + 1);
        return p + Encoding.UTF8.GetBytes(s, span[p..]);
    }

    private static string ReadString(ReadOnlySpan<byte> data, ref int position)
    {
        var length = ReadVarint(data, ref position);
        var s = Encoding.UTF8.GetString(data.Slice(position, length));
        position += length;
        return s;
    }

    // Types, versions, services, regions and metadata keys repeat across events: intern them.
    private static string ReadInterned(ReadOnlySpan<byte> data, ref int position)
    {
        var length = ReadVarint(data, ref position);
        var s = Utf8Intern.Envelope.GetOrAdd(data.Slice(position, length));
        position += length;
        return s;
    }

    private static string? ReadOptional(ReadOnlySpan<byte> data, ref int position)
    {
        var length = ReadVarint(data, ref position);
        if (length == 0) return null;
        var s = Utf8Intern.Envelope.GetOrAdd(data.Slice(position, length - 1));
        position += length - 1;
        return s;
    }

    public static int WriteVarint(Span<byte> span, int value)
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

    public static int VarintLength(int value)
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
