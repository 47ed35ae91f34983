using System.Text;
using System.Text.Json;
using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public class CompactJsonTests
{
    private static readonly KeystoneStateSerializer Serializer = new();

    private static string Json<T>(T state) => Encoding.UTF8.GetString(Serializer.Serialize(state).ToArray());

    private static T Read<T>(string json) => Serializer.Deserialize<T>(BinaryData.FromString(json))!;

    private static UserActivityState BusyUser(int events)
    {
        var random = new Random(7);
        return new UserActivityState
        {
            SeenIds = [.. Enumerable.Range(0, events).Select(_ => random.NextInt64())],
            SeenAt = [.. Enumerable.Range(0, events).Select(i => 639_000_000_000_000_000L + i * 10_000_000L)],
            Watches = [.. Enumerable.Range(0, events).Select(i => new ContributedWatch(random.NextInt64(), i * 1_000L))],
        };
    }

    [Fact]
    public void A_user_state_round_trips_with_its_ids_times_and_contributions_as_base64()
    {
        var state = BusyUser(300);
        var json = Json(state);

        using (var document = JsonDocument.Parse(json))
        {
            Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("seenIds").ValueKind);
            Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("seenAt").ValueKind);
            Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("watches").ValueKind);
            Assert.False(document.RootElement.TryGetProperty("contributed", out _));
        }
        var back = Read<UserActivityState>(json);
        Assert.Equal(state.SeenIds, back.SeenIds);
        Assert.Equal(state.SeenAt, back.SeenAt);
        Assert.Equal(state.Watches, back.Watches);
    }

    [Fact]
    public void The_compact_form_is_about_half_the_size_of_json_arrays()
    {
        var state = BusyUser(300);
        var arrays = JsonSerializer.Serialize(new { state.SeenIds, state.SeenAt, state.Watches }, KeystoneStateSerializer.Options);
        var compact = Json(state);
        Assert.True(compact.Length < arrays.Length * 0.55, $"compact {compact.Length} bytes, arrays {arrays.Length}");
    }

    [Fact]
    public void A_state_written_with_json_arrays_still_reads()
    {
        var id = Guid.Parse("6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f");
        var old = $$"""{"seenIds":[1,-2,9223372036854775807],"seenAt":[5,6,7],"contributed":[{"eventId":"{{id}}","watchMs":30000}]}""";
        var state = Read<UserActivityState>(old);
        Assert.Equal([1L, -2L, long.MaxValue], state.SeenIds!);
        Assert.Equal([5L, 6L, 7L], state.SeenAt!);
        Assert.Equal([new WholeIdWatch(id, 30_000)], state.Contributed);

        var segments = Read<ArchiveWriterState>($$"""{"recentSegments":["{{id}}"]}""");
        Assert.Equal([id], segments.RecentSegments);
    }

    [Fact]
    public void Null_ids_stay_null_and_segment_ids_round_trip()
    {
        var user = Read<UserActivityState>(Json(new UserActivityState { SeenIds = null, SeenAt = [] }));
        Assert.Null(user.SeenIds);
        Assert.Empty(user.SeenAt!);

        var ids = Enumerable.Range(0, 50).Select(_ => Guid.NewGuid()).ToList();
        Assert.Equal(ids, Read<ArchiveWriterState>(Json(new ArchiveWriterState { RecentSegments = ids })).RecentSegments);
    }

    [Fact]
    public void A_truncated_value_is_refused_with_what_it_is()
    {
        var bad = $$"""{"seenIds":"{{Convert.ToBase64String(new byte[12])}}"}""";
        var e = Assert.Throws<JsonException>(() => Read<UserActivityState>(bad));
        Assert.Contains("12 bytes is not a whole number of 8-byte items", e.Message);
    }

    private static AdCampaignState CampaignWithHistory(int profiles, int impressionsEach)
    {
        var start = new DateTimeOffset(2026, 12, 3, 22, 0, 0, TimeSpan.Zero);
        var state = new AdCampaignState();
        for (var p = 0; p < profiles; p++)
            state.ProfileImpressions[$"profile-{p:D5}"] = [.. Enumerable.Range(0, impressionsEach).Select(i => start.AddMilliseconds(p * 1_234 + i * 60_017))];
        state.RecentClicks["d:device-1"] = [start.AddSeconds(1), start.AddSeconds(2)];
        state.RecentClicks["p:profile-00001"] = [];
        return state;
    }

    [Fact]
    public void A_campaigns_impression_and_click_times_round_trip_as_base64_per_key()
    {
        var state = CampaignWithHistory(50, 4);
        var json = Json(state);

        using (var document = JsonDocument.Parse(json))
        {
            Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("profileImpressions").GetProperty("profile-00007").ValueKind);
            Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("recentClicks").GetProperty("d:device-1").ValueKind);
        }
        var back = Read<AdCampaignState>(json);
        Assert.Equal(state.ProfileImpressions.Keys, back.ProfileImpressions.Keys);
        foreach (var (profile, times) in state.ProfileImpressions) Assert.Equal(times, back.ProfileImpressions[profile]);
        Assert.Equal(state.RecentClicks["d:device-1"], back.RecentClicks["d:device-1"]);
        Assert.Empty(back.RecentClicks["p:profile-00001"]);
    }

    [Fact]
    public void Times_keep_their_instant_when_written_with_another_offset()
    {
        var local = new DateTimeOffset(2026, 12, 3, 23, 30, 0, TimeSpan.FromHours(1.5)).AddTicks(7);
        var state = new AdCampaignState { ProfileImpressions = { ["p1"] = [local] } };
        var back = Read<AdCampaignState>(Json(state)).ProfileImpressions["p1"].Single();
        Assert.Equal(local.UtcTicks, back.UtcTicks);
        Assert.Equal(TimeSpan.Zero, back.Offset);
    }

    [Fact]
    public void Impression_times_take_under_half_the_space_of_iso_strings_keys_included()
    {
        var state = CampaignWithHistory(500, 6);
        var iso = JsonSerializer.Serialize(new { state.ProfileImpressions }, KeystoneStateSerializer.Options).Length;
        var written = Json(new AdCampaignState { ProfileImpressions = state.ProfileImpressions }).Length - Json(new AdCampaignState()).Length;
        // 11 characters a time instead of 38; the profile ids are the same in both.
        Assert.True(written < iso * 0.45, $"base64 {written} bytes, ISO arrays {iso}");
    }

    [Fact]
    public void A_campaign_state_written_with_iso_time_arrays_still_reads()
    {
        const string old = """{"profileImpressions":{"p1":["2026-12-03T22:15:35.9562201+00:00","2026-12-03T23:15:35+01:00"],"p2":[]},"recentClicks":{"d:x":["2026-12-03T22:00:00+00:00"]}}""";
        var state = Read<AdCampaignState>(old);
        Assert.Equal([DateTimeOffset.Parse("2026-12-03T22:15:35.9562201+00:00"), DateTimeOffset.Parse("2026-12-03T22:15:35+00:00")], state.ProfileImpressions["p1"]);
        Assert.Empty(state.ProfileImpressions["p2"]);
        Assert.Single(state.RecentClicks["d:x"]);
        // And it is written back in the compact form.
        using var document = JsonDocument.Parse(Json(state));
        Assert.Equal(JsonValueKind.String, document.RootElement.GetProperty("profileImpressions").GetProperty("p1").ValueKind);
    }
}
