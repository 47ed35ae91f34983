using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans.Storage;

namespace Keystone.Storage;

/// <summary>
/// Writes grain state as plain System.Text.Json, so checkpoint blobs are readable by any tool and by tests, and
/// events inside them keep their envelope form. (Orleans' default storage serializer is Newtonsoft with type names.)
/// </summary>
public sealed class KeystoneStateSerializer : IGrainStorageSerializer
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        IncludeFields = false,
    };

    public BinaryData Serialize<T>(T? input) => new(JsonSerializer.SerializeToUtf8Bytes(input, Options));

    public T? Deserialize<T>(BinaryData input) => input.ToMemory().IsEmpty ? default : JsonSerializer.Deserialize<T>(input.ToMemory().Span, Options);
}
