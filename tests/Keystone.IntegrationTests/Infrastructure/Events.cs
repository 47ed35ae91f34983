using System.Text;
using System.Text.Json.Nodes;
using Keystone.Events;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>Small, valid events for scripted scenarios.</summary>
public static class TestEvents
{
    public static KeystoneEvent Play(string user, string video, string type = "video.play.started", string region = "us-east-1", long position = 0, string quality = "HD", DateTimeOffset? at = null) =>
        new(Guid.NewGuid(), type, at ?? DateTimeOffset.UtcNow, "1.0", new EventSource("playback-service", "smart_tv", region),
            Payload.Create(("user_id", user), ("profile_id", $"{user}-p1"), ("video_id", video), ("position_ms", position), ("quality", quality), ("device_id", $"{user}-tv")),
            EventMetadata.Of(("trace_id", "trace-1")));

    public static KeystoneEvent Payment(string user, string region, string email = "someone@example.com") =>
        new(Guid.NewGuid(), "billing.payment_processed", DateTimeOffset.UtcNow, "1.0", new EventSource("billing-service", null, region),
            Payload.Create(("user_id", user), ("payment_id", Guid.NewGuid().ToString("N")), ("amount", 15.49), ("currency", "USD"), ("status", "succeeded"), ("email", email), ("card_last4", "4242")),
            EventMetadata.Empty);

    public static KeystoneEvent AdImpression(string user, string campaign = "campaign-1") =>
        new(Guid.NewGuid(), "ad.impression", DateTimeOffset.UtcNow, "1.0", new EventSource("ad-gateway", "mobile", "us-west-2"),
            Payload.Create(("campaign_id", campaign), ("ad_id", "ad-1"), ("creative_id", "cr-1"), ("user_id", user), ("profile_id", $"{user}-p1"),
                ("device_id", $"{user}-phone"), ("ad_session_id", Guid.NewGuid().ToString("N")), ("cost_micros", 2500)),
            EventMetadata.Empty);

    public static string JsonArray(IEnumerable<KeystoneEvent> events) => "[" + string.Join(",", events.Select(EventJson.Serialize)) + "]";

    public static string Ndjson(IEnumerable<KeystoneEvent> events) => string.Join("\n", events.Select(EventJson.Serialize)) + "\n";

    public static JsonObject Node(KeystoneEvent e) => JsonNode.Parse(EventJson.Serialize(e))!.AsObject();

    public static StringContent JsonContent(string body, string contentType = "application/json") => new(body, Encoding.UTF8, contentType);
}
