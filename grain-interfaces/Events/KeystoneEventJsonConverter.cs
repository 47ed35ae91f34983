using System.Text.Json;
using System.Text.Json.Serialization;

namespace Keystone.Events;

/// <summary>
/// Lets System.Text.Json (REST responses, blob state) read and write events in the envelope's own wire form
/// instead of the CLR shape.
/// </summary>
public sealed class KeystoneEventJsonConverter : JsonConverter<KeystoneEvent>
{
    public override KeystoneEvent? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("An event must be a JSON object.");
        var parsed = EventJson.ReadEvent(ref reader);
        return parsed.Event ?? throw new JsonException(parsed.Error!.Message);
    }

    public override void Write(Utf8JsonWriter writer, KeystoneEvent value, JsonSerializerOptions options) => EventJson.Write(writer, value);
}
