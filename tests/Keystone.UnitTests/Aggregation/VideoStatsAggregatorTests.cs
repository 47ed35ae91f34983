using Keystone.Aggregation;
using Keystone.Events;
using static Keystone.UnitTests.Aggregation.Playback;

namespace Keystone.UnitTests.Aggregation;

public class VideoStatsAggregatorTests
{
    private static VideoStatsAggregator Aggregator(AggregationOptions? options = null, VideoStatsState? state = null) =>
        new(options ?? new AggregationOptions(), state ?? new VideoStatsState());

    private static KeystoneEvent Catalog(string type, params (string Name, object? Value)[] fields) =>
        new(Guid.NewGuid(), type, At("11:00"), "1.0", new EventSource("catalog-service"),
            Payload.Create([("video_id", Video), .. fields]), EventMetadata.Empty);

    [Fact]
    public void Starts_completions_watch_time_quality_and_viewers_per_window_and_in_total()
    {
        var video = Aggregator();
        PlayContribution[] plays =
        [
            Contribution(At("12:00:10"), user: "user-1", started: true, quality: "4K"),
            Contribution(At("12:01:00"), user: "user-2", started: true, quality: "HD"),
            // user-1 again: a start, not a new viewer.
            Contribution(At("12:02:00"), user: "user-1", started: true, quality: "SD"),
            Contribution(At("12:03:00"), user: "user-1", watchMs: 120_000, completed: true),
            Contribution(At("12:04:00"), user: "user-2", watchMs: 30_000),
            // A pause does not make a viewer: only starts do.
            Contribution(At("12:06:00"), user: "user-4", watchMs: 5_000),
            Contribution(At("12:07:00"), user: "user-3", started: true),
        ];
        foreach (var p in plays) Assert.True(video.Apply(p, Now));

        var view = video.View(Video);

        Assert.Equal(Video, view.VideoId);
        Assert.Equal(2, view.Windows.Count);
        Assert.Equal(new VideoWindowStats(Window("12:00", "12:05"), 3, 1, 2, 150_000, new QualityMix(1, 1, 1, 0)), view.Windows[0]);
        Assert.Equal(new VideoWindowStats(Window("12:05", "12:10"), 1, 0, 1, 5_000, new QualityMix(0, 0, 0, 1)), view.Windows[1]);
        Assert.Equal(new VideoTotals(4, 1, 3, 155_000, new QualityMix(1, 1, 1, 1)), view.Totals);
    }

    [Fact]
    public void Unique_viewers_stay_exact_across_many_starts_of_few_users()
    {
        var video = Aggregator();
        for (var i = 0; i < 100; i++) video.Apply(Contribution(At("12:00").AddSeconds(i), user: $"user-{i % 7}", started: true), Now);

        var view = video.View(Video);

        Assert.Equal(100, view.Totals.Starts);
        Assert.Equal(7, view.Totals.UniqueViewers);
        Assert.Equal(7, Assert.Single(view.Windows).UniqueViewers);
    }

    [Fact]
    public void Catalogue_events_set_title_series_and_genres()
    {
        var video = Aggregator();
        // Before the catalogue speaks, the first genre a player reported stands in.
        video.Apply(Contribution(At("12:00"), started: true, genre: "comedy"), Now);
        video.Apply(Contribution(At("12:01"), started: true, genre: "horror"), Now);
        Assert.Equal(["comedy"], video.View(Video).Genres);

        Assert.True(video.ApplyCatalog(Catalog("content.added", ("title", "Chapter One"), ("series_id", "stranger-things"), ("genres", new[] { "drama", "thriller", "drama" })), Now));
        var added = video.View(Video);
        Assert.Equal(("Chapter One", "stranger-things"), (added.Title, added.SeriesId));
        Assert.Equal(["drama", "thriller"], added.Genres);

        // An update that names only the title leaves the rest.
        Assert.True(video.ApplyCatalog(Catalog("content.metadata_updated", ("title", "Chapter One: The Vanishing")), Now));
        video.Apply(Contribution(At("12:02"), started: true, genre: "horror"), Now);
        var updated = video.View(Video);
        Assert.Equal(("Chapter One: The Vanishing", "stranger-things"), (updated.Title, updated.SeriesId));
        Assert.Equal(["drama", "thriller"], updated.Genres);
    }

    [Fact]
    public void A_repeated_contribution_or_catalogue_event_is_ignored()
    {
        var video = Aggregator();
        var start = Contribution(At("12:00"), started: true, quality: "HD");
        var stop = Contribution(At("12:01"), watchMs: 60_000, completed: true);
        var added = Catalog("content.added", ("title", "First"));
        Assert.True(video.Apply(start, Now));
        Assert.True(video.Apply(stop, Now));
        Assert.True(video.ApplyCatalog(added, Now));
        video.State.Title = "Renamed since";

        Assert.False(video.Apply(start, Now.AddSeconds(1)));
        Assert.False(video.Apply(stop with { WatchMs = 1 }, Now.AddSeconds(1)));
        Assert.False(video.ApplyCatalog(added, Now.AddSeconds(1)));

        var view = video.View(Video);
        Assert.Equal(new VideoTotals(1, 1, 1, 60_000, new QualityMix(0, 1, 0, 0)), view.Totals);
        Assert.Equal(new VideoWindowStats(Window("12:00", "12:05"), 1, 1, 1, 60_000, new QualityMix(0, 1, 0, 0)), Assert.Single(view.Windows));
        Assert.Equal("Renamed since", view.Title);
    }

    [Fact]
    public void Only_the_most_recent_windows_are_kept()
    {
        var video = Aggregator(new AggregationOptions { HistoryWindows = 2 });
        video.Apply(Contribution(At("12:00"), user: "user-1", started: true), Now);
        video.Apply(Contribution(At("12:05"), user: "user-2", started: true), Now);
        video.Apply(Contribution(At("12:10"), user: "user-3", started: true), Now);

        var view = video.View(Video);

        Assert.Equal([Window("12:05", "12:10"), Window("12:10", "12:15")], view.Windows.Select(w => w.Window));
        Assert.Equal([1L, 1L], view.Windows.Select(w => w.UniqueViewers));
        Assert.Equal(new VideoTotals(3, 0, 3, 0, new QualityMix(0, 0, 0, 3)), view.Totals);
    }

    [Fact]
    public void A_start_older_than_every_kept_window_counts_in_the_totals_only()
    {
        var video = Aggregator(new AggregationOptions { HistoryWindows = 2 });
        video.Apply(Contribution(At("12:05"), user: "user-1", started: true), Now);
        video.Apply(Contribution(At("12:10"), user: "user-2", started: true), Now);

        // [12:00, 12:05) would be the oldest of three windows with room for two: it has no window to count in.
        Assert.True(video.Apply(Contribution(At("12:04"), user: "user-3", started: true, quality: "HD"), Now));

        var view = video.View(Video);
        Assert.Equal([Window("12:05", "12:10"), Window("12:10", "12:15")], view.Windows.Select(w => w.Window));
        Assert.Equal([1L, 1L], view.Windows.Select(w => w.Starts));
        Assert.Equal([1L, 1L], view.Windows.Select(w => w.UniqueViewers));
        Assert.Equal(new VideoTotals(3, 0, 3, 0, new QualityMix(0, 1, 0, 2)), view.Totals);
    }

    [Fact]
    public void A_restored_aggregator_keeps_unique_viewers_and_de_duplication()
    {
        var video = Aggregator();
        var first = Contribution(At("12:00"), user: "user-0", started: true);
        video.Apply(first, Now);
        // 20 viewers in the first window (beyond the exact list: registers), 3 in the second.
        for (var i = 1; i < 20; i++) video.Apply(Contribution(At("12:01"), user: $"user-{i}", started: true), Now);
        for (var i = 0; i < 3; i++) video.Apply(Contribution(At("12:06"), user: $"user-{i}", started: true), Now);
        video.ApplyCatalog(Catalog("content.added", ("title", "Title"), ("genres", new[] { "drama" })), Now);
        video.PrepareCheckpoint();
        var before = video.View(Video);

        var restored = Aggregator(state: RoundTrip(video.State));

        var after = restored.View(Video);
        Assert.Equal([20L, 3L], after.Windows.Select(w => w.UniqueViewers));
        Assert.Equal(20, after.Totals.UniqueViewers);
        Assert.Equal(Json(before), Json(after));

        Assert.False(restored.Apply(first, Now));
        // A known viewer starting again adds a start, not a viewer; a new one adds both.
        restored.Apply(Contribution(At("12:07"), user: "user-1", started: true), Now);
        restored.Apply(Contribution(At("12:08"), user: "user-99", started: true), Now);
        var later = restored.View(Video);
        Assert.Equal((5L, 4L), (later.Windows[1].Starts, later.Windows[1].UniqueViewers));
        Assert.Equal((25L, 21L), (later.Totals.Starts, later.Totals.UniqueViewers));
    }
}
