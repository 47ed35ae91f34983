using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using Keystone.Ads;
using Keystone.Aggregation;

namespace Keystone.Storage;

/// <summary>
/// Checkpointed states stay JSON (readable by any tool), but their bulk is opaque numbers: the de-duplication ids and
/// times, the watch time each recent event contributed, the segment ids an operator remembers. Written as JSON arrays
/// those were about 80 % of a checkpoint's bytes (20 characters a number, 70 a contribution) and most of its
/// serialisation time, all at the barrier. These converters write them as one base64 string of their little-endian
/// bytes (about half the size, and encoded in bulk), and still read the arrays written before.
/// </summary>
public static class CompactJson
{
    internal static byte[] ReadBase64(ref Utf8JsonReader reader, int itemSize, string what)
    {
        var bytes = reader.GetBytesFromBase64();
        if (bytes.Length % itemSize != 0)
            throw new JsonException($"{what}: {bytes.Length} bytes is not a whole number of {itemSize}-byte items");
        return bytes;
    }

    internal static JsonException Unexpected(JsonTokenType token, string what) =>
        new($"{what}: expected a base64 string, an array or null, found {token}");
}

/// <summary>A <c>long[]</c> as base64 of 8 little-endian bytes each; also reads a JSON array of numbers.</summary>
public sealed class Int64ArrayBase64Converter : JsonConverter<long[]?>
{
    public override bool HandleNull => true;

    public override long[]? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                var bytes = CompactJson.ReadBase64(ref reader, 8, "long array");
                var values = new long[bytes.Length / 8];
                for (var i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8));
                return values;
            case JsonTokenType.StartArray:
                var list = new List<long>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) list.Add(reader.GetInt64());
                return [.. list];
            default:
                throw CompactJson.Unexpected(reader.TokenType, "long array");
        }
    }

    public override void Write(Utf8JsonWriter writer, long[]? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }
        var bytes = new byte[value.Length * 8];
        for (var i = 0; i < value.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), value[i]);
        writer.WriteBase64StringValue(bytes);
    }
}

/// <summary>A <c>List&lt;Guid&gt;</c> as base64 of 16 bytes each; also reads a JSON array of GUID strings.</summary>
public sealed class GuidListBase64Converter : JsonConverter<List<Guid>>
{
    public override List<Guid> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return [];
            case JsonTokenType.String:
                var bytes = CompactJson.ReadBase64(ref reader, 16, "GUID list");
                var ids = new List<Guid>(bytes.Length / 16);
                for (var at = 0; at < bytes.Length; at += 16) ids.Add(new Guid(bytes.AsSpan(at, 16)));
                return ids;
            case JsonTokenType.StartArray:
                var list = new List<Guid>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) list.Add(reader.GetGuid());
                return list;
            default:
                throw CompactJson.Unexpected(reader.TokenType, "GUID list");
        }
    }

    public override void Write(Utf8JsonWriter writer, List<Guid> value, JsonSerializerOptions options)
    {
        var bytes = new byte[value.Count * 16];
        for (var i = 0; i < value.Count; i++) value[i].TryWriteBytes(bytes.AsSpan(i * 16));
        writer.WriteBase64StringValue(bytes);
    }
}

/// <summary>
/// A user's recent contributions as states written before the hashed form hold them: base64 of (16-byte event id,
/// 8-byte watch time) each, or, older still, a JSON array of <c>{"eventId", "watchMs"}</c> objects.
/// </summary>
public sealed class ContributedWatchListConverter : JsonConverter<List<WholeIdWatch>>
{
    private const int ItemSize = 24;

    public override List<WholeIdWatch> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return [];
            case JsonTokenType.String:
                var bytes = CompactJson.ReadBase64(ref reader, ItemSize, "contributions");
                var items = new List<WholeIdWatch>(bytes.Length / ItemSize);
                for (var at = 0; at < bytes.Length; at += ItemSize)
                    items.Add(new WholeIdWatch(new Guid(bytes.AsSpan(at, 16)), BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 16))));
                return items;
            case JsonTokenType.StartArray:
                // The element converter is the default one: this converter is on the property, not in the options.
                return JsonSerializer.Deserialize<List<WholeIdWatch>>(ref reader, options) ?? [];
            default:
                throw CompactJson.Unexpected(reader.TokenType, "contributions");
        }
    }

    public override void Write(Utf8JsonWriter writer, List<WholeIdWatch> value, JsonSerializerOptions options)
    {
        var bytes = new byte[value.Count * ItemSize];
        for (var i = 0; i < value.Count; i++)
        {
            value[i].EventId.TryWriteBytes(bytes.AsSpan(i * ItemSize));
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * ItemSize + 16), value[i].WatchMs);
        }
        writer.WriteBase64StringValue(bytes);
    }
}

/// <summary>
/// A user's recent contributions (<see cref="ContributedWatch"/>) as one base64 string:
/// <code>1 (format) | count varint | count × event hash i64 LE | count × zigzag varint watch ms</code>
/// A watch time is a few bytes where it was eight, and the hash eight where a GUID was sixteen: about 10 bytes a
/// contribution instead of 24, in what was half of a user's checkpoint.
/// </summary>
public sealed class ContributedWatchPackConverter : JsonConverter<List<ContributedWatch>>
{
    private const byte Format = 1;
    private const string What = "contributions";

    public override List<ContributedWatch> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return [];
        if (reader.TokenType != JsonTokenType.String) throw new JsonException($"{What}: expected a base64 string or null, found {reader.TokenType}");
        ReadOnlySpan<byte> bytes = reader.GetBytesFromBase64();
        if (bytes.IsEmpty) return [];
        if (bytes[0] != Format) throw new JsonException($"{What}: unknown format {bytes[0]}");
        var offset = 1;
        var total = Varint.Read(bytes, ref offset, What);
        if (total > (ulong)(bytes.Length - offset) / 9) throw new JsonException($"{What}: {total} entries do not fit in {bytes.Length} bytes");
        var count = (int)total;
        var hashes = offset;
        offset += 8 * count;
        var items = new List<ContributedWatch>(count);
        for (var i = 0; i < count; i++)
            items.Add(new ContributedWatch(BinaryPrimitives.ReadInt64LittleEndian(bytes[(hashes + 8 * i)..]), Varint.UnZigZag(Varint.Read(bytes, ref offset, What))));
        if (offset != bytes.Length) throw new JsonException($"{What}: {bytes.Length - offset} bytes after the last entry");
        return items;
    }

    public override void Write(Utf8JsonWriter writer, List<ContributedWatch> value, JsonSerializerOptions options)
    {
        var length = 1 + Varint.Length((ulong)value.Count) + 8 * value.Count;
        foreach (var c in value) length += Varint.Length(Varint.ZigZag(c.WatchMs));
        var bytes = length <= 4096 ? stackalloc byte[length] : new byte[length];
        bytes[0] = Format;
        var offset = 1 + Varint.Write(bytes[1..], (ulong)value.Count);
        foreach (var c in value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes[offset..], c.EventHash);
            offset += 8;
        }
        foreach (var c in value) offset += Varint.Write(bytes[offset..], Varint.ZigZag(c.WatchMs));
        writer.WriteBase64StringValue(bytes);
    }
}

/// <summary>
/// Times per key (an ad campaign's impressions per profile, its recent clicks per device and profile) as
/// <c>{"key": base64 of 8-byte little-endian UTC ticks each}</c>; also reads the arrays of ISO 8601 strings written
/// before. An ISO time costs 35 characters, and a campaign keeps tens of thousands: as arrays they were a third of its
/// checkpoint (about 145 KB of 455 KB in the ads benchmark) and most of the time to serialise it. The instants are kept;
/// their offsets become UTC, which is all the fraud rules and caps compare.
/// </summary>
public sealed class TimesByKeyConverter : JsonConverter<Dictionary<string, RecentTimes>>
{
    public override Dictionary<string, RecentTimes> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return [];
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException($"times by key: expected an object or null, found {reader.TokenType}");
        var map = new Dictionary<string, RecentTimes>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            map[key] = reader.TokenType switch
            {
                JsonTokenType.String => Unpack(CompactJson.ReadBase64(ref reader, 8, $"times of '{key}'")),
                JsonTokenType.StartArray => ReadArray(ref reader),
                JsonTokenType.Null => [],
                _ => throw CompactJson.Unexpected(reader.TokenType, $"times of '{key}'"),
            };
        }
        return map;
    }

    private static RecentTimes Unpack(byte[] bytes)
    {
        var times = new RecentTimes();
        for (var at = 0; at < bytes.Length; at += 8) times.Add(new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at)), TimeSpan.Zero));
        return times;
    }

    private static RecentTimes ReadArray(ref Utf8JsonReader reader)
    {
        var times = new RecentTimes();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) times.Add(reader.GetDateTimeOffset());
        return times;
    }

    public override void Write(Utf8JsonWriter writer, Dictionary<string, RecentTimes> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        Span<byte> buffer = stackalloc byte[256];
        foreach (var (key, times) in value)
        {
            var bytes = times.Count * 8 <= buffer.Length ? buffer[..(times.Count * 8)] : new byte[times.Count * 8];
            for (var i = 0; i < times.Count; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes[(i * 8)..], times[i].UtcTicks);
            writer.WritePropertyName(key);
            writer.WriteBase64StringValue(bytes);
        }
        writer.WriteEndObject();
    }
}
