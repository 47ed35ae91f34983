using Keystone.Client.Simulation;
using Keystone.Schemas;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Simulation;

public class TrafficSimulatorTests
{
    [Fact]
    public void Twenty_thousand_events_and_the_catalogue_all_pass_the_schemas()
    {
        var simulator = new TrafficSimulator(new SimulationOptions { Seed = 7 });
        var catalogue = simulator.Catalogue(Sample.Now).ToList();
        var events = Enumerable.Range(0, 20_000).Select(_ => simulator.Next(Sample.Now)).ToList();

        Assert.Equal(2_000, catalogue.Count);
        Assert.All(catalogue, e => Assert.Equal("content.added", e.EventType));
        var failures = catalogue.Concat(events)
            .Select(e => (e.EventType, Error: SchemaRegistry.Embedded.Validate(e, now: Sample.Now)))
            .Where(r => r.Error is not null)
            .Take(5)
            .Select(r => $"{r.EventType}: {r.Error}")
            .ToList();
        Assert.Empty(failures);
        Assert.Equal(20_000, simulator.Generated);

        var categories = events.Select(e => e.EventType.Split('.')[0]).ToHashSet();
        Assert.Superset(new HashSet<string> { "video", "user", "billing", "content", "system", "ad" }, categories);
        Assert.Equal(events.Count, events.Select(e => e.EventId).Distinct().Count());
    }

    [Fact]
    public void Sessions_produce_the_whole_playback_and_ad_vocabulary()
    {
        var simulator = new TrafficSimulator(new SimulationOptions { Seed = 11 });
        var types = Enumerable.Range(0, 20_000).Select(_ => simulator.Next(Sample.Now).EventType).ToHashSet();

        Assert.Superset(
            new HashSet<string>
            {
                "video.play.started", "video.play.paused", "video.play.resumed", "video.play.seeked", "video.play.stopped",
                "user.login", "user.logout",
                "ad.impression", "ad.first_quartile", "ad.midpoint", "ad.third_quartile", "ad.complete", "ad.skip", "ad.click",
                "billing.payment_processed", "content.metadata_updated", "system.health_check",
            },
            types);
    }

    [Fact]
    public void The_same_seed_gives_the_same_sequence()
    {
        var a = new TrafficSimulator(new SimulationOptions { Seed = 3, Users = 500, Videos = 100 });
        var b = new TrafficSimulator(new SimulationOptions { Seed = 3, Users = 500, Videos = 100 });

        var first = Enumerable.Range(0, 2_000).Select(_ => a.Next(Sample.Now)).ToList();
        var second = Enumerable.Range(0, 2_000).Select(_ => b.Next(Sample.Now)).ToList();

        Assert.Equal(first.Select(e => e.EventType), second.Select(e => e.EventType));
        Assert.Equal(first.Select(e => e.UserId), second.Select(e => e.UserId));
        Assert.Equal(first.Select(e => e.Source), second.Select(e => e.Source));
    }

    [Fact]
    public void Different_seeds_give_different_sequences()
    {
        var a = new TrafficSimulator(new SimulationOptions { Seed = 1 });
        var b = new TrafficSimulator(new SimulationOptions { Seed = 2 });
        Assert.NotEqual(
            Enumerable.Range(0, 200).Select(_ => a.Next(Sample.Now).UserId).ToList(),
            Enumerable.Range(0, 200).Select(_ => b.Next(Sample.Now).UserId).ToList());
    }

    [Fact]
    public void A_users_session_starts_with_login_and_keeps_its_device_and_region()
    {
        var simulator = new TrafficSimulator(new SimulationOptions { Seed = 5, Users = 50, ConcurrentSessions = 10 });
        var events = Enumerable.Range(0, 3_000).Select(_ => simulator.Next(Sample.Now)).Where(e => e.Source.Service != "billing-service").ToList();

        foreach (var user in events.Where(e => e.UserId is not null).GroupBy(e => e.UserId))
        {
            var sessionEvents = user.Where(e => e.Source.DeviceType is not null).ToList();
            if (sessionEvents.Count == 0) continue;
            Assert.Equal("user.login", sessionEvents[0].EventType);
            Assert.Single(sessionEvents.Select(e => e.Source.Region).Distinct());
        }
    }
}
