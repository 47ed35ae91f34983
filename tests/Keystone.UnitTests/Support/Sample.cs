using Keystone.Events;

namespace Keystone.UnitTests.Support;

/// <summary>Events and texts shared by several test classes, built the way producers build them.</summary>
internal static class Sample
{
    public static readonly DateTimeOffset Now = new(2024, 12, 26, 12, 0, 0, TimeSpan.Zero);

    // The brief's envelope (docs/architecture.md, Envelope) with its "uuid-v4" placeholder replaced by a real UUID.
    public const string SeedEnvelope = """
        {
          "event_id": "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f",
          "event_type": "video.play.started",
          "timestamp": "2024-12-26T12:00:00Z",
          "version": "1.0",
          "source":   { "service": "playback-service", "device_type": "smart_tv", "region": "us-east-1" },
          "payload":  { "user_id": "user-123", "video_id": "stranger-things-s4e01",
                        "profile_id": "profile-456", "quality": "4K", "position_ms": 0 },
          "metadata": { "trace_id": "trace-789", "correlation_id": "corr-101" }
        }
        """;

    public static readonly Guid SeedEventId = Guid.Parse("6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f");

    public static KeystoneEvent PlayStarted(
        string userId = "user-123",
        string? region = "us-east-1",
        string quality = "4K",
        EventMetadata? metadata = null,
        Guid? id = null,
        string eventType = "video.play.started") =>
        new(id ?? Guid.NewGuid(), eventType, Now, "1.0", new EventSource("playback-service", "smart_tv", region),
            Payload.Create(
                ("user_id", userId), ("video_id", "stranger-things-s4e01"), ("profile_id", "profile-456"),
                ("quality", quality), ("position_ms", 0)),
            metadata ?? EventMetadata.Of(("trace_id", "trace-789"), ("correlation_id", "corr-101")));

    public static KeystoneEvent Payment(string? region = "us-east-1", string userId = "user-123") =>
        new(Guid.NewGuid(), "billing.payment_processed", Now, "1.0", new EventSource("billing-service", null, region),
            Payload.Create(
                ("user_id", userId), ("payment_id", "pay-1"), ("amount", 15.49), ("currency", "USD"), ("status", "succeeded"),
                ("card_last4", "4242"), ("email", "jane@example.com")),
            EventMetadata.Of(("trace_id", "trace-1")));

    public static KeystoneEvent Of(string eventType, Payload payload, string? region = "us-east-1", string version = "1.0", EventMetadata? metadata = null, string service = "test-service") =>
        new(Guid.NewGuid(), eventType, Now, version, new EventSource(service, null, region), payload, metadata ?? EventMetadata.Empty);

    public static KeystoneEvent HealthCheck(string? region = "us-east-1") =>
        Of("system.health_check", Payload.Create(("component", "edge-1"), ("status", "healthy")), region, service: "monitoring-agent");
}

/// <summary>Files of the repository itself, found from the test binaries' folder.</summary>
internal static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Orleans.Keystone.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} holds Orleans.Keystone.sln.");
    }
}

/// <summary>A clock that stands still at a chosen instant; timers still run on real time.</summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
