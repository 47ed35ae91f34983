namespace Keystone.Events;

/// <summary>
/// The event envelope (docs/architecture.md, Envelope). Events are immutable facts: a change of shape is a new <see cref="Version"/>,
/// never an edit of an old one.
/// </summary>
[GenerateSerializer, Immutable]
[System.Text.Json.Serialization.JsonConverter(typeof(KeystoneEventJsonConverter))]
public sealed record KeystoneEvent(
    [property: Id(0)] Guid EventId,
    [property: Id(1)] string EventType,
    [property: Id(2)] DateTimeOffset Timestamp,
    [property: Id(3)] string Version,
    [property: Id(4)] EventSource Source,
    [property: Id(5)] Payload Payload,
    [property: Id(6)] EventMetadata Metadata)
{
    /// <summary>The key that orders events: the payload's <c>user_id</c>, or the event id when there is none.</summary>
    public string PartitionKey => Payload.GetString(PartitionKeyField) ?? EventId.ToString("D");

    /// <summary>The payload field whose value keys an event's partition (<see cref="PartitionKey"/>).</summary>
    public const string PartitionKeyField = "user_id";

    public string? UserId => Payload.GetString("user_id");

    public static KeystoneEvent Create(
        string eventType,
        Payload payload,
        EventSource source,
        string version = "1.0",
        DateTimeOffset? timestamp = null,
        EventMetadata? metadata = null) =>
        new(Guid.NewGuid(), eventType, timestamp ?? DateTimeOffset.UtcNow, version, source, payload, metadata ?? EventMetadata.Empty);
}

/// <summary>Who emitted the event. Only <see cref="Service"/> is required.</summary>
[GenerateSerializer, Immutable]
public sealed record EventSource(
    [property: Id(0)] string Service,
    [property: Id(1)] string? DeviceType = null,
    [property: Id(2)] string? Region = null);
