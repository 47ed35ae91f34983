using Keystone.Aggregation;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class ProfileAggregatorTests
{
    private const long Hour = 3_600_000;

    private static ProfileAggregator Aggregator(AggregationOptions? options = null) =>
        new(options ?? new AggregationOptions { AffinityHalfLife = TimeSpan.FromDays(7) }, new ProfileState());

    private static void Watch(ProfileAggregator profile, DateTimeOffset at, long watchMs, params string[] genres) =>
        Assert.True(profile.Apply(Contribution(at, watchMs: watchMs), genres, Now));

    [Fact]
    public void Plays_and_watch_time_per_window_and_in_total()
    {
        var profile = Aggregator();
        profile.Apply(Contribution(At("12:00"), started: true), [], Now);
        profile.Apply(Contribution(At("12:03"), watchMs: 60_000), [], Now);
        profile.Apply(Contribution(At("12:06"), started: true), [], Now);
        profile.Apply(Contribution(At("12:08"), watchMs: 30_000), [], Now);

        var view = profile.View(Profile);

        Assert.Equal((Profile, User, 2L, 90_000L, At("12:08")), (view.ProfileId, view.UserId, view.Plays, view.WatchMs, view.LastActivity));
        Assert.Equal([new ProfileWindowStats(Window("12:00", "12:05"), 1, 60_000), new ProfileWindowStats(Window("12:05", "12:10"), 1, 30_000)], view.Windows);
        Assert.Empty(view.TopGenres);
    }

    [Fact]
    public void Watch_time_a_half_life_ago_counts_half()
    {
        var profile = Aggregator();
        var now = At("12:00");

        Watch(profile, now.AddDays(-7), Hour, "drama");
        Watch(profile, now, Hour, "comedy");

        Assert.Equal([new GenreAffinity("comedy", 60), new GenreAffinity("drama", 30)], profile.TopGenres(10, now));
        // Without a time the profile's last activity is used.
        Assert.Equal([new GenreAffinity("comedy", 60), new GenreAffinity("drama", 30)], profile.TopGenres(10));
        // A week later both have halved.
        Assert.Equal([new GenreAffinity("comedy", 30), new GenreAffinity("drama", 15)], profile.TopGenres(10, now.AddDays(7)));
    }

    [Fact]
    public void Watch_time_of_one_genre_accumulates_with_decay()
    {
        var profile = Aggregator();
        var now = At("12:00");

        Watch(profile, now.AddDays(-14), Hour, "drama");
        Watch(profile, now.AddDays(-7), Hour, "drama");
        Watch(profile, now, Hour, "drama");

        // 60/4 + 60/2 + 60
        Assert.Equal([new GenreAffinity("drama", 105)], profile.TopGenres(10, now));
    }

    [Fact]
    public void An_older_event_arriving_later_is_decayed_to_its_own_time()
    {
        var profile = Aggregator();
        var now = At("12:00");

        Watch(profile, now, Hour, "drama");
        Watch(profile, now.AddDays(-7), Hour, "drama");

        // The same 60 + 30 as in time order: the order of arrival does not change the score.
        Assert.Equal([new GenreAffinity("drama", 90)], profile.TopGenres(10, now));
    }

    [Fact]
    public void Watch_time_is_shared_equally_among_the_genres()
    {
        var profile = Aggregator();

        Watch(profile, At("12:00"), Hour, "drama", "thriller", "crime");

        Assert.Equal([new GenreAffinity("crime", 20), new GenreAffinity("drama", 20), new GenreAffinity("thriller", 20)], profile.TopGenres(10, At("12:00")));
    }

    [Fact]
    public void Ties_are_ordered_by_name_and_the_limit_applies_after_ordering()
    {
        var profile = Aggregator();
        Watch(profile, At("12:00"), Hour / 2, "comedy");
        Watch(profile, At("12:00"), Hour / 2, "Action");
        Watch(profile, At("12:00"), Hour / 2, "action");
        Watch(profile, At("12:00"), Hour, "drama");

        // Ordinal: upper case sorts before lower case.
        Assert.Equal(
            [new GenreAffinity("drama", 60), new GenreAffinity("Action", 30), new GenreAffinity("action", 30), new GenreAffinity("comedy", 30)],
            profile.TopGenres(10, At("12:00")));
        Assert.Equal([new GenreAffinity("drama", 60), new GenreAffinity("Action", 30)], profile.TopGenres(2, At("12:00")));
    }

    [Fact]
    public void Starts_without_watch_time_do_not_score_genres()
    {
        var profile = Aggregator();

        profile.Apply(Contribution(At("12:00"), started: true), ["drama"], Now);

        Assert.Empty(profile.TopGenres(10));
        Assert.Equal(1, profile.View(Profile).Plays);
    }

    [Fact]
    public void A_repeated_contribution_is_ignored()
    {
        var profile = Aggregator();
        var play = Contribution(At("12:00"), watchMs: Hour, started: true);

        Assert.True(profile.Apply(play, ["drama"], Now));
        Assert.False(profile.Apply(play, ["drama"], Now.AddSeconds(1)));
        Assert.False(profile.Apply(play, ["comedy"], Now.AddSeconds(1)));

        var view = profile.View(Profile);
        Assert.Equal((1L, Hour), (view.Plays, view.WatchMs));
        Assert.Equal([new ProfileWindowStats(Window("12:00", "12:05"), 1, Hour)], view.Windows);
        Assert.Equal([new GenreAffinity("drama", 60)], view.TopGenres);
    }

    [Fact]
    public void A_restored_profile_still_recognises_repeats()
    {
        var profile = Aggregator();
        var play = Contribution(At("12:00"), watchMs: Hour, started: true);
        profile.Apply(play, ["drama"], Now);
        profile.PrepareCheckpoint();

        var restored = new ProfileAggregator(new AggregationOptions(), RoundTrip(profile.State));

        Assert.False(restored.Apply(play, ["drama"], Now));
        Assert.Equal(Json(profile.View(Profile)), Json(restored.View(Profile)));
    }
}
