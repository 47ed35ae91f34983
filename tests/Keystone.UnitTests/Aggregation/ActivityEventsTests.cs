using Keystone.Aggregation;
using Keystone.Schemas;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class ActivityEventsTests
{
    private static WindowResult NewResult() => new(User,
        new UserWindowStats(Window("12:00", "12:05"), 2, 1, 1, 1, 1, 50_000, 2, [Tv, "phone-1"], At("12:03:20.5"), true), LateUpdate: false);

    private static readonly WindowResult Result = NewResult();

    [Fact]
    public void A_window_result_is_a_valid_event_with_every_count()
    {
        var e = ActivityEvents.Window(Result, 3, Now);

        Assert.Null(SchemaRegistry.Embedded.Validate(e, now: Now));
        Assert.Equal(("user.activity.window", "1.0", "keystone-aggregations", Now), (e.EventType, e.Version, e.Source.Service, e.Timestamp));
        Assert.Equal(
            """{"user_id":"user-1","window_start":"2024-12-26T12:00:00Z","window_end":"2024-12-26T12:05:00Z","plays":2,"pauses":1,"resumes":1,"seeks":1,"stops":1,"watch_time_ms":50000,"distinct_videos":2,"devices":["tv-1","phone-1"],"last_activity":"2024-12-26T12:03:20.5Z","late_update":false}""",
            e.Payload.ToString());
        Assert.Equal("3", e.Metadata.Get("partition"));
        Assert.Equal(User, e.UserId);
    }

    [Fact]
    public void A_window_without_activity_time_is_valid_too()
    {
        var empty = Result with { Stats = Result.Stats with { Devices = [], LastActivity = null } };

        var e = ActivityEvents.Window(empty, 0, Now);

        Assert.Null(SchemaRegistry.Embedded.Validate(e, now: Now));
        Assert.Null(e.Payload.GetString("last_activity"));
    }

    [Fact]
    public void A_trigger_is_a_valid_event()
    {
        var e = ActivityEvents.Trigger(Result, 3, Now);

        Assert.Null(SchemaRegistry.Embedded.Validate(e, now: Now));
        Assert.Equal("recommendation.update_requested", e.EventType);
        Assert.Equal("""{"user_id":"user-1","reason":"window_closed","window_end":"2024-12-26T12:05:00Z"}""", e.Payload.ToString());
        Assert.Equal("3", e.Metadata.Get("partition"));
    }

    [Fact]
    public void The_same_result_gives_the_same_event_id_whenever_and_wherever_it_is_emitted()
    {
        var window = ActivityEvents.Window(Result, 3, Now);
        var trigger = ActivityEvents.Trigger(Result, 3, Now);

        Assert.Equal(window.EventId, ActivityEvents.Window(NewResult(), 5, Now.AddMinutes(1)).EventId);
        Assert.Equal(trigger.EventId, ActivityEvents.Trigger(NewResult(), 5, Now.AddMinutes(1)).EventId);

        // Different content, different id: a late update is a new fact, and so is another count.
        Assert.NotEqual(window.EventId, ActivityEvents.Window(Result with { LateUpdate = true }, 3, Now).EventId);
        Assert.NotEqual(window.EventId, ActivityEvents.Window(Result with { Stats = Result.Stats with { Plays = 3 } }, 3, Now).EventId);
        Assert.NotEqual(window.EventId, trigger.EventId);

        // Name-based UUID layout: version 5, RFC 4122 variant.
        Assert.Equal(5, window.EventId.Version);
        Assert.Equal(0x80, window.EventId.ToByteArray(bigEndian: true)[8] & 0xC0);
    }
}
