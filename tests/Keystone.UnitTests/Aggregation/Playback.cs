using System.Globalization;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Storage;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Aggregation;

/// <summary>
/// Playback events and contributions at chosen event times, shaped as the players and the user grain produce them.
/// Times are on 2024-12-26 (UTC), where 12:00 starts a 5-minute window.
/// </summary>
internal static class Playback
{
    public const string User = "user-1";
    public const string Profile = "profile-1";
    public const string Video = "video-1";
    public const string Tv = "tv-1";

    /// <summary>Processing time handed to the aggregators; the de-duplication horizon is measured against it.</summary>
    public static readonly DateTimeOffset Now = Sample.Now;

    private static readonly DateTimeOffset Day = new(2024, 12, 26, 0, 0, 0, TimeSpan.Zero);

    /// <summary>"12:04:59.999" on the test day, UTC.</summary>
    public static DateTimeOffset At(string timeOfDay) => Day + TimeSpan.Parse(timeOfDay, CultureInfo.InvariantCulture);

    public static TimeWindow Window(string start, string end) => new(At(start), At(end));

    public static KeystoneEvent Started(DateTimeOffset at, long position = 0, string video = Video, string device = Tv, string quality = "HD", string? genre = null) =>
        Make("video.play.started", at, video, device, ("position_ms", position), ("quality", quality), ("genre", genre));

    public static KeystoneEvent Paused(DateTimeOffset at, long position, string video = Video, string device = Tv) =>
        Make("video.play.paused", at, video, device, ("position_ms", position));

    public static KeystoneEvent Resumed(DateTimeOffset at, long position, string video = Video, string device = Tv) =>
        Make("video.play.resumed", at, video, device, ("position_ms", position));

    public static KeystoneEvent Seeked(DateTimeOffset at, long from, long to, string video = Video, string device = Tv) =>
        Make("video.play.seeked", at, video, device, ("from_position_ms", from), ("position_ms", to));

    public static KeystoneEvent Stopped(DateTimeOffset at, long position, string video = Video, string device = Tv, long? duration = null, bool? completed = null) =>
        Make("video.play.stopped", at, video, device, ("position_ms", position), ("duration_ms", duration), ("completed", completed));

    private static KeystoneEvent Make(string type, DateTimeOffset at, string video, string device, params (string Name, object? Value)[] fields)
    {
        (string Name, object? Value)[] common = [("user_id", User), ("profile_id", Profile), ("video_id", video), ("device_id", device)];
        var payload = Payload.Create(common.Concat(fields.Where(f => f.Value is not null)).ToArray());
        return new KeystoneEvent(Guid.NewGuid(), type, at, "1.0", new EventSource("playback-service", "smart_tv", "us-east-1"), payload, EventMetadata.Empty);
    }

    public static PlayContribution Contribution(
        DateTimeOffset at,
        string user = User,
        string video = Video,
        long watchMs = 0,
        bool started = false,
        bool completed = false,
        string? quality = null,
        string? genre = null) =>
        new(Guid.NewGuid(), started ? "video.play.started" : completed ? "video.play.stopped" : "video.play.paused",
            at, user, video, Profile, watchMs, started, completed, quality, genre);

    /// <summary>A state written and read back the way grain storage does, so a "restart" sees only what was persisted.</summary>
    public static T RoundTrip<T>(T state)
    {
        var serializer = new KeystoneStateSerializer();
        return serializer.Deserialize<T>(serializer.Serialize(state))!;
    }

    /// <summary>Records holding lists compare them by reference; this compares a stats row by value.</summary>
    public static void AssertStats(UserWindowStats expected, UserWindowStats actual)
    {
        Assert.Equal(expected.Devices, actual.Devices);
        Assert.Equal(expected, actual with { Devices = expected.Devices });
    }

    public static string Json<T>(T value) => System.Text.Json.JsonSerializer.Serialize(value, KeystoneStateSerializer.Options);
}
