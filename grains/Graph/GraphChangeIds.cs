using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Keystone.Events;

namespace Keystone.Graph;

/// <summary>
/// The event ids of what one delivery of the graph operator emits, derived from the delivery's log position and the
/// edge or node that changed. A replayed delivery re-emits the same ids, so a consumer of the changes topic that
/// de-duplicates by event id drops the repeats instead of counting them twice. Within a delivery the keys are
/// distinct: a node is called once per delivery and reports each of its edges once.
/// </summary>
/// <remarks>
/// One SHA-256 per delivery for the position; each change adds a 64-bit FNV-1a of its key to the low half. Random
/// ids cost more: a <see cref="Guid.NewGuid"/> per change was about 0.5 % of the saturation run's CPU, most of it in
/// the kernel's random generator. The ids are RFC 9562 version 8 (custom) UUIDs, so they cannot be mistaken for a
/// producer's random ones.
/// </remarks>
public readonly struct GraphChangeIds
{
    private const byte NodeTag = 0xFF;
    private readonly ulong _high;
    private readonly ulong _low;

    public GraphChangeIds(int partition, long sequence)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.ASCII.GetBytes($"graph-changes/{partition}/{sequence}"), hash);
        _high = BinaryPrimitives.ReadUInt64LittleEndian(hash);
        _low = BinaryPrimitives.ReadUInt64LittleEndian(hash[8..]);
    }

    public Guid Edge(NodeType type, string id, EdgeLabel label, string target) =>
        Compose(Text(Step(Text(Step(FnvHash.Offset64, (byte)type), id), (byte)label), target));

    public Guid Node(NodeType type, string id) => Compose(Step(Text(Step(FnvHash.Offset64, (byte)type), id), NodeTag));

    private Guid Compose(ulong key)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, _high);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], _low ^ key);
        // Version 8 in the high nibble of byte 7 (Guid's little-endian layout), variant 10 in byte 8.
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x80);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes);
    }

    // The length first, so that "ab" + "c" and "a" + "bc" differ.
    private static ulong Text(ulong hash, string text)
    {
        hash = Step(Step(hash, (byte)text.Length), (byte)(text.Length >> 8));
        foreach (var c in text) hash = (hash ^ c) * FnvHash.Prime64;
        return hash;
    }

    private static ulong Step(ulong hash, byte value) => (hash ^ value) * FnvHash.Prime64;
}
