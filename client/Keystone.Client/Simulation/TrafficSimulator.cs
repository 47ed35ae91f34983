using Keystone.Events;

namespace Keystone.Client.Simulation;

/// <summary>Size and mix of the simulated world.</summary>
public sealed record SimulationOptions
{
    public int Users { get; init; } = 10_000;
    public int Videos { get; init; } = 2_000;
    public int Campaigns { get; init; } = 20;

    /// <summary>Sessions in progress at once; each step advances one of them by one event.</summary>
    public int ConcurrentSessions { get; init; } = 2_000;

    /// <summary>Share of events that are billing, content or system events rather than session events.</summary>
    public double BackgroundShare { get; init; } = 0.02;

    public int Seed { get; init; } = 42;
}

/// <summary>
/// Generates realistic traffic: members sign in, pick a profile, watch titles (start, pause, resume, seek, stop),
/// see ad breaks (impression, quartiles, complete, skip, the odd click) and sign out; billing, catalogue and
/// system events arrive at low rates. Every event it produces passes the built-in schemas. Deterministic for a seed.
/// </summary>
public sealed class TrafficSimulator
{
    private static readonly string[] DeviceTypes = ["smart_tv", "mobile", "tablet", "web", "console"];
    private static readonly string[] Regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1", "sa-east-1"];
    private static readonly string[] Genres = ["drama", "comedy", "thriller", "documentary", "sci-fi", "animation", "horror", "romance"];
    private static readonly string[] Qualities = ["4K", "HD", "HD", "SD"];
    private static readonly string[] Plans = ["basic", "standard", "premium", "ads"];

    private readonly SimulationOptions _options;
    private readonly Random _random;
    private readonly User[] _users;
    private readonly Video[] _videos;
    private readonly Campaign[] _campaigns;
    private readonly List<Session> _sessions = [];
    private readonly HashSet<int> _busyUsers = [];
    private long _sequence;

    public TrafficSimulator(SimulationOptions? options = null)
    {
        _options = options ?? new SimulationOptions();
        _random = new Random(_options.Seed);
        _users = Enumerable.Range(0, _options.Users).Select(NewUser).ToArray();
        _videos = Enumerable.Range(0, _options.Videos).Select(NewVideo).ToArray();
        _campaigns = Enumerable.Range(0, Math.Max(1, _options.Campaigns)).Select(i => new Campaign($"campaign-{i:D3}", [$"ad-{i:D3}-a", $"ad-{i:D3}-b"], 500 + _random.Next(4_500))).ToArray();
    }

    public long Generated => _sequence;

    /// <summary>The catalogue as <c>content.added</c> events, so genres and series are known before playback starts.</summary>
    public IEnumerable<KeystoneEvent> Catalogue(DateTimeOffset now) => _videos.Select(v => ContentAdded(v, now));

    /// <summary>The next event, stamped <paramref name="now"/>.</summary>
    public KeystoneEvent Next(DateTimeOffset now)
    {
        _sequence++;
        if (_random.NextDouble() < _options.BackgroundShare) return Background(now);
        while (_sessions.Count < Math.Min(_options.ConcurrentSessions, _users.Length)) StartSession();
        var index = _random.Next(_sessions.Count);
        var session = _sessions[index];
        var e = session.Step(this, now);
        if (session.Done)
        {
            _busyUsers.Remove(session.User.Index);
            _sessions[index] = _sessions[^1];
            _sessions.RemoveAt(_sessions.Count - 1);
        }
        return e;
    }

    private void StartSession()
    {
        int u;
        do u = _random.Next(_users.Length);
        while (!_busyUsers.Add(u) && _busyUsers.Count < _users.Length);
        var user = _users[u];
        _sessions.Add(new Session(user, user.Devices[_random.Next(user.Devices.Length)], user.Profiles[_random.Next(user.Profiles.Length)]));
    }

    private User NewUser(int i)
    {
        var profiles = Enumerable.Range(0, 1 + _random.Next(4)).Select(p => $"profile-{i:D6}-{p}").ToArray();
        var devices = Enumerable.Range(0, 1 + _random.Next(3)).Select(d => (Id: $"device-{i:D6}-{d}", Type: DeviceTypes[_random.Next(DeviceTypes.Length)])).ToArray();
        return new User(i, $"user-{i:D6}", Regions[_random.Next(Regions.Length)], profiles, devices);
    }

    private Video NewVideo(int i)
    {
        var series = i % 10 == 0 ? null : $"series-{i / 10:D4}";
        var genres = new[] { Genres[i / 10 % Genres.Length], Genres[(i / 10 + 3) % Genres.Length] }.Distinct().ToArray();
        return new Video($"video-{i:D5}", series, genres, (20 + _random.Next(100)) * 60_000L);
    }

    private static KeystoneEvent Make(string type, DateTimeOffset now, string service, string? device, string? region, Payload payload) =>
        new(Guid.NewGuid(), type, now, "1.0", new EventSource(service, device, region), payload, EventMetadata.Of(("trace_id", Guid.NewGuid().ToString("N")[..16])));

    private KeystoneEvent ContentAdded(Video v, DateTimeOffset now)
    {
        var fields = new List<(string, object?)> { ("video_id", v.Id), ("title", $"Title {v.Id}"), ("genres", v.Genres), ("duration_ms", v.DurationMs) };
        if (v.Series is not null) fields.Add(("series_id", v.Series));
        return Make("content.added", now, "catalog-service", null, null, Payload.Create([.. fields]));
    }

    private KeystoneEvent Background(DateTimeOffset now)
    {
        var roll = _random.Next(100);
        var user = _users[_random.Next(_users.Length)];
        if (roll < 40)
        {
            var amount = Math.Round(7.99 + _random.Next(3) * 5.0, 2);
            return Make("billing.payment_processed", now, "billing-service", null, user.Region, Payload.Create(
                ("user_id", user.Id), ("payment_id", Guid.NewGuid().ToString("N")), ("subscription_id", $"sub-{user.Index:D6}"),
                ("amount", amount), ("currency", "USD"), ("status", _random.Next(20) == 0 ? "failed" : "succeeded"),
                ("card_last4", _random.Next(10_000).ToString("D4", System.Globalization.CultureInfo.InvariantCulture)), ("email", $"{user.Id}@example.com")));
        }
        if (roll < 55)
        {
            return Make(_random.Next(3) == 0 ? "billing.subscription_created" : "billing.subscription_renewed", now, "billing-service", null, user.Region, Payload.Create(
                ("user_id", user.Id), ("subscription_id", $"sub-{user.Index:D6}"), ("plan", Plans[_random.Next(Plans.Length)]),
                ("amount", 15.49), ("currency", "USD")));
        }
        if (roll < 70)
        {
            var v = _videos[_random.Next(_videos.Length)];
            return Make("content.metadata_updated", now, "catalog-service", null, null, v.Series is null
                ? Payload.Create(("video_id", v.Id), ("genres", v.Genres))
                : Payload.Create(("video_id", v.Id), ("genres", v.Genres), ("series_id", v.Series)));
        }
        if (roll < 95)
        {
            return Make("system.health_check", now, "monitoring-agent", null, Regions[_random.Next(Regions.Length)], Payload.Create(
                ("component", $"edge-{_random.Next(8)}"), ("status", _random.Next(50) == 0 ? "degraded" : "healthy"), ("latency_ms", Math.Round(_random.NextDouble() * 40, 2))));
        }
        return Make("system.error_logged", now, "playback-service", null, user.Region, Payload.Create(
            ("component", "playback-api"), ("error_code", $"E{_random.Next(100, 999)}"), ("message", "upstream timeout"),
            ("severity", _random.Next(10) == 0 ? "critical" : "error")));
    }

    private sealed record User(int Index, string Id, string Region, string[] Profiles, (string Id, string Type)[] Devices);
    private sealed record Video(string Id, string? Series, string[] Genres, long DurationMs);
    private sealed record Campaign(string Id, string[] Ads, long CostMicros);

    // One member's visit: login → (profile switch) → one or more titles with pauses, seeks and ad breaks → logout.
    private sealed class Session(User user, (string Id, string Type) device, string profile)
    {
        private enum Phase { Login, Pick, Playing, AdBreak, Logout, Done }

        private Phase _phase = Phase.Login;
        private Video? _video;
        private long _position;
        private bool _paused;
        private int _titlesLeft = 1;
        private int _stepsInTitle;
        private string _quality = "HD";
        private (Campaign Campaign, string Ad, string Session, int Stage, bool Skip, bool Click)? _ad;

        public User User { get; } = user;
        public bool Done => _phase == Phase.Done;

        public KeystoneEvent Step(TrafficSimulator sim, DateTimeOffset now)
        {
            var r = sim._random;
            switch (_phase)
            {
                case Phase.Login:
                    _titlesLeft = 1 + r.Next(3);
                    _phase = Phase.Pick;
                    return Event(sim, "user.login", now, "identity-service", Payload.Create(
                        ("user_id", User.Id), ("device_id", device.Id), ("profile_id", profile), ("method", "token")));

                case Phase.Pick:
                    _video = sim._videos[Popular(r, sim._videos.Length)];
                    _position = r.Next(3) == 0 ? r.NextInt64(_video.DurationMs / 2) : 0;
                    _quality = Qualities[r.Next(Qualities.Length)];
                    _paused = false;
                    _stepsInTitle = 3 + r.Next(8);
                    _phase = Phase.Playing;
                    return Play(sim, "video.play.started", now);

                case Phase.Playing:
                    if (r.Next(6) == 0 && !_paused)
                    {
                        _ad = (sim._campaigns[r.Next(sim._campaigns.Length)], "", Guid.NewGuid().ToString("N"), 0, r.Next(3) == 0, r.Next(25) == 0);
                        _ad = _ad.Value with { Ad = _ad.Value.Campaign.Ads[r.Next(_ad.Value.Campaign.Ads.Length)] };
                        _phase = Phase.AdBreak;
                        return Step(sim, now);
                    }
                    if (--_stepsInTitle <= 0)
                    {
                        var completed = r.Next(3) == 0;
                        _position = completed ? _video!.DurationMs : Math.Min(_video!.DurationMs, _position + r.Next(60_000, 900_000));
                        _titlesLeft--;
                        _phase = _titlesLeft > 0 ? Phase.Pick : Phase.Logout;
                        return Play(sim, "video.play.stopped", now, ("completed", completed));
                    }
                    _position = Math.Min(_video!.DurationMs - 1, _position + r.Next(10_000, 300_000));
                    if (_paused)
                    {
                        _paused = false;
                        return Play(sim, "video.play.resumed", now);
                    }
                    if (r.Next(4) == 0)
                    {
                        var from = _position;
                        _position = r.NextInt64(_video.DurationMs);
                        return Play(sim, "video.play.seeked", now, ("from_position_ms", from));
                    }
                    _paused = true;
                    return Play(sim, "video.play.paused", now);

                case Phase.AdBreak:
                    var ad = _ad!.Value;
                    var stage = ad.Stage;
                    _ad = ad with { Stage = stage + 1 };
                    var (type, extra) = stage switch
                    {
                        0 => ("ad.impression", ("cost_micros", (object?)ad.Campaign.CostMicros)),
                        1 when ad.Click => ("ad.click", ("click_url", (object?)"https://example.com/offer")),
                        1 => ("ad.first_quartile", ("placement", (object?)"midroll")),
                        2 when ad.Skip => ("ad.skip", ("skip_offset_ms", (object?)5_000L)),
                        2 => ("ad.midpoint", ("placement", (object?)"midroll")),
                        3 => ("ad.third_quartile", ("placement", (object?)"midroll")),
                        _ => ("ad.complete", ("placement", (object?)"midroll")),
                    };
                    if (type is "ad.skip" or "ad.complete" or "ad.click")
                    {
                        _ad = null;
                        _phase = Phase.Playing;
                    }
                    return Event(sim, type, now, "ad-gateway", Payload.Create(
                        ("campaign_id", ad.Campaign.Id), ("ad_id", ad.Ad), ("creative_id", $"{ad.Ad}-creative"),
                        ("user_id", User.Id), ("profile_id", profile), ("device_id", device.Id), ("ad_session_id", ad.Session),
                        ("video_id", _video!.Id), extra));

                case Phase.Logout:
                    _phase = Phase.Done;
                    return Event(sim, "user.logout", now, "identity-service", Payload.Create(("user_id", User.Id), ("device_id", device.Id), ("profile_id", profile)));

                default:
                    throw new InvalidOperationException("The session has ended.");
            }
        }

        // Popularity follows a rough power law: a few titles get most of the views.
        private static int Popular(Random r, int count) => (int)Math.Min(count - 1, Math.Floor(Math.Pow(r.NextDouble(), 2.5) * count));

        private KeystoneEvent Play(TrafficSimulator sim, string type, DateTimeOffset now, params (string, object?)[] extra)
        {
            var fields = new List<(string, object?)>
            {
                ("user_id", User.Id), ("profile_id", profile), ("video_id", _video!.Id), ("device_id", device.Id),
                ("position_ms", _position), ("quality", _quality), ("duration_ms", _video.DurationMs),
                ("genre", _video.Genres[0]),
            };
            if (_video.Series is not null) fields.Add(("series_id", _video.Series));
            fields.AddRange(extra);
            return Event(sim, type, now, "playback-service", Payload.Create([.. fields]));
        }

        private KeystoneEvent Event(TrafficSimulator sim, string type, DateTimeOffset now, string service, Payload payload) =>
            Make(type, now, service, device.Type, User.Region, payload);
    }
}
