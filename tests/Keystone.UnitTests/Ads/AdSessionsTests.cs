using Keystone.Ads;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ads;

public class AdSessionsTests
{
    private static readonly DateTimeOffset T0 = Sample.Now;

    private static AdSessions New(int max = 100) => new(new AdSessionCounters(), TimeSpan.FromMinutes(30), max, TimeSpan.FromMinutes(1));

    [Fact]
    public void A_showing_folds_into_one_session_from_impression_to_complete()
    {
        var sessions = New();
        sessions.Observe("s1", AdEventKind.Impression, T0);
        sessions.Observe("s1", AdEventKind.FirstQuartile, T0.AddSeconds(4));
        sessions.Observe("s1", AdEventKind.Midpoint, T0.AddSeconds(8));
        sessions.Observe("s1", AdEventKind.ThirdQuartile, T0.AddSeconds(12));
        var s = sessions.Observe("s1", AdEventKind.Complete, T0.AddSeconds(15));

        Assert.Equal(T0, s.ImpressionAt);
        Assert.Equal(0b111, s.Quartiles);
        Assert.True(s.Completed);
        Assert.Equal(T0.AddSeconds(15), s.LastEventAt);
        Assert.Equal((1L, 1L, 0L, 0L, 0L), (sessions.Counters.Sessions, sessions.Counters.Completed, sessions.Counters.Skipped, sessions.Counters.Clicked, sessions.Counters.MissingImpression));
        Assert.Equal(1, sessions.Open);
    }

    [Fact]
    public void Skips_and_clicks_count_once_per_session_and_sessions_stay_apart()
    {
        var sessions = New();
        sessions.Observe("a", AdEventKind.Impression, T0);
        sessions.Observe("a", AdEventKind.Skip, T0.AddSeconds(5));
        sessions.Observe("b", AdEventKind.Impression, T0);
        sessions.Observe("b", AdEventKind.Click, T0.AddSeconds(3));
        var b = sessions.Observe("b", AdEventKind.Click, T0.AddSeconds(4));

        Assert.Equal(2, b.Clicks);
        Assert.False(sessions.Find("a")!.Value.Completed);
        Assert.True(sessions.Find("a")!.Value.Skipped);
        Assert.Equal((2L, 1L, 1L), (sessions.Counters.Sessions, sessions.Counters.Skipped, sessions.Counters.Clicked));
    }

    [Fact]
    public void A_session_that_starts_without_an_impression_is_flagged()
    {
        var sessions = New();
        var s = sessions.Observe("orphan", AdEventKind.Click, T0);
        Assert.Null(s.ImpressionAt);
        Assert.Equal(1L, sessions.Counters.MissingImpression);

        // A late impression fills it in, but the signal was counted.
        sessions.Observe("orphan", AdEventKind.Impression, T0.AddSeconds(1));
        Assert.Equal(T0.AddSeconds(1), sessions.Find("orphan")!.Value.ImpressionAt);
        Assert.Equal(1L, sessions.Counters.MissingImpression);
    }

    [Fact]
    public void Idle_sessions_close_after_the_timeout_and_the_count_stays_bounded()
    {
        var sessions = New(max: 100);
        sessions.Observe("old", AdEventKind.Impression, T0);
        sessions.Observe("recent", AdEventKind.Impression, T0.AddMinutes(20));
        Assert.Equal(1, sessions.Expire(T0.AddMinutes(31)));
        Assert.Null(sessions.Find("old"));
        Assert.NotNull(sessions.Find("recent"));

        for (var i = 0; i < 150; i++) sessions.Observe($"s{i}", AdEventKind.Impression, T0.AddMinutes(21).AddSeconds(i));
        sessions.Expire(T0.AddMinutes(25));
        Assert.Equal(100, sessions.Open);
        // The least recently active went first.
        Assert.Null(sessions.Find("recent"));
        Assert.NotNull(sessions.Find("s149"));
    }

    [Fact]
    public void Finished_sessions_close_after_the_short_grace_open_ones_after_the_timeout()
    {
        var sessions = New();
        sessions.Observe("done", AdEventKind.Impression, T0);
        sessions.Observe("done", AdEventKind.Complete, T0.AddSeconds(15));
        sessions.Observe("skipped", AdEventKind.Impression, T0);
        sessions.Observe("skipped", AdEventKind.Skip, T0.AddSeconds(5));
        sessions.Observe("playing", AdEventKind.Impression, T0);

        Assert.Equal(0, sessions.Expire(T0.AddSeconds(60)));
        Assert.Equal(2, sessions.Expire(T0.AddSeconds(76)));
        Assert.NotNull(sessions.Find("playing"));
        Assert.Equal(1, sessions.Expire(T0.AddMinutes(31)));
    }

    [Fact]
    public void Sessions_survive_export_and_import_and_keys_are_stable()
    {
        var sessions = New();
        sessions.Observe("a", AdEventKind.Impression, T0);
        sessions.Observe("a", AdEventKind.Midpoint, T0.AddSeconds(8));
        sessions.Observe("a", AdEventKind.Click, T0.AddSeconds(9));
        sessions.Observe("b", AdEventKind.Click, T0.AddSeconds(1));
        sessions.Observe("b", AdEventKind.Skip, T0.AddSeconds(2));

        var copy = New();
        copy.Import(sessions.Export());
        Assert.Equal(2, copy.Open);
        var a = copy.Find("a")!.Value;
        Assert.Equal((T0, T0, T0.AddSeconds(9), 2, 1, false, false), (a.ImpressionAt, a.FirstEventAt, a.LastEventAt, a.Quartiles, a.Clicks, a.Completed, a.Skipped));
        var b = copy.Find("b")!.Value;
        Assert.Equal((null, true, 1), (b.ImpressionAt, b.Skipped, b.Clicks));
        // FNV-1a of "a": the same value in every process (string.GetHashCode is not).
        Assert.Equal(unchecked((long)0xaf63dc4c8601ec8cUL), AdSessions.Key("a"));
    }

    [Fact]
    public void The_packed_form_keeps_every_field_in_a_little_over_half_the_bytes_and_any_number_of_sessions_reads_back()
    {
        var sessions = New(max: 1_000);
        for (var n = 0; n < 200; n++)
        {
            var id = $"s{n}";
            // Impressions before and after a session's first event, none, many clicks, every flag.
            if (n % 3 == 0) sessions.Observe(id, AdEventKind.FirstQuartile, T0.AddSeconds(n));
            if (n % 4 != 1) sessions.Observe(id, AdEventKind.Impression, T0.AddSeconds(n).AddTicks(n % 3 == 0 ? -12_345 : 0));
            if (n % 5 == 0) sessions.Observe(id, AdEventKind.Complete, T0.AddSeconds(n + 15));
            if (n % 7 == 0) sessions.Observe(id, AdEventKind.Skip, T0.AddSeconds(n + 5));
            for (var c = 0; c < n % 9 * 40; c++) sessions.Observe(id, AdEventKind.Click, T0.AddSeconds(n + 2));

            var packed = sessions.Export();
            // Never the older form's length: a whole number of 36-byte records.
            Assert.NotEqual(0, packed.Length % 36);
            var copy = New(max: 1_000);
            copy.Import(packed);
            Assert.Equal(sessions.Open, copy.Open);
            for (var i = 0; i <= n; i++) Assert.Equal(sessions.Find($"s{i}"), copy.Find($"s{i}"));
        }
        Assert.True(sessions.Export().Length < 200 * 36 * 2 / 3, $"{sessions.Export().Length} bytes for 200 sessions");
    }

    [Fact]
    public void Sessions_written_as_fixed_records_before_the_packed_form_still_read_back()
    {
        // The 36-byte records: key, impression, first and last event ticks, quartiles, flags, clicks.
        var record = new byte[36];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record, AdSessions.Key("old"));
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(8), T0.UtcTicks);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(16), T0.UtcTicks);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(24), T0.AddSeconds(9).UtcTicks);
        record[32] = 3;
        record[33] = 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(34), 2);

        var sessions = New();
        sessions.Import(record);
        var old = sessions.Find("old")!.Value;
        Assert.Equal((T0, T0, T0.AddSeconds(9), 3, true, false, 2), (old.ImpressionAt, old.FirstEventAt, old.LastEventAt, old.Quartiles, old.Completed, old.Skipped, old.Clicks));
        Assert.Throws<InvalidDataException>(() => New().Import([7, 1, 2]));
    }
}
