using System.Text;
using System.Text.Json;
using Keystone.Events;

namespace Keystone.UnitTests.Events;

public class PayloadTests
{
    private static readonly Payload Sample = Payload.Create(
        ("user_id", "user-123"), ("position_ms", 1500L), ("ratio", 0.25), ("live", true), ("note", null), ("tags", new[] { "a", "b" }), ("count", 3));

    [Fact]
    public void Create_writes_compact_json_in_field_order()
    {
        Assert.Equal("""{"user_id":"user-123","position_ms":1500,"ratio":0.25,"live":true,"note":null,"tags":["a","b"],"count":3}""", Sample.ToString());
        Assert.Equal(Encoding.UTF8.GetByteCount(Sample.ToString()), Sample.Length);
        Assert.Equal(["user_id", "position_ms", "ratio", "live", "note", "tags", "count"], Sample.FieldNames);
    }

    [Fact]
    public void Create_refuses_duplicate_names_and_nested_values()
    {
        Assert.Equal("Payload field 'a' is given twice. (Parameter 'fields')", Assert.Throws<ArgumentException>(() => Payload.Create(("a", 1), ("a", 2))).Message);
        Assert.Contains("Payload field 'o' has a value of type", Assert.Throws<ArgumentException>(() => Payload.Create(("o", new Uri("http://x")))).Message);
        Assert.Throws<ArgumentException>(() => Payload.Create(("nested", new[] { new[] { 1 } })));
        Assert.Throws<ArgumentException>(() => Payload.Create(("nan", double.NaN)));
    }

    [Fact]
    public void Typed_getters_read_matching_types_only()
    {
        Assert.Equal("user-123", Sample.GetString("user_id"));
        Assert.Null(Sample.GetString("position_ms"));
        Assert.Null(Sample.GetString("missing"));
        Assert.Equal(1500, Sample.GetInt64("position_ms"));
        Assert.Null(Sample.GetInt64("ratio"));
        Assert.Null(Sample.GetInt64("user_id"));
        Assert.True(Sample.TryGetDouble("ratio", out var ratio));
        Assert.Equal(0.25, ratio);
        Assert.False(Sample.TryGetDouble("user_id", out _));
        Assert.True(Sample.GetBoolean("live"));
        Assert.Null(Sample.GetBoolean("note"));
        Assert.Equal(["a", "b"], Sample.GetStringArray("tags"));
        Assert.Equal(["user-123"], Sample.GetStringArray("user_id"));
        Assert.Empty(Sample.GetStringArray("count"));
        Assert.Empty(Sample.GetStringArray("missing"));
    }

    [Fact]
    public void GetText_renders_scalars_as_written()
    {
        Assert.Equal("1500", Sample.GetText("position_ms"));
        Assert.Equal("0.25", Sample.GetText("ratio"));
        Assert.Equal("true", Sample.GetText("live"));
        Assert.Null(Sample.GetText("note"));
        Assert.Null(Sample.GetText("tags"));
    }

    [Fact]
    public void Has_sees_null_fields_too()
    {
        Assert.True(Sample.Has("note"));
        Assert.True(Sample.Has("count"));
        Assert.False(Sample.Has("user"));
        Assert.False(Payload.Empty.Has("user_id"));
        Assert.Empty(Payload.Empty.FieldNames);
    }

    [Fact]
    public void Lookups_skip_over_array_values()
    {
        var p = Payload.Create(("tags", new object?[] { "x", 1, null, true }), ("after", "found"));
        Assert.Equal("found", p.GetString("after"));
        Assert.Equal(["x"], p.GetStringArray("tags"));
    }

    [Fact]
    public void ToDictionary_gives_clr_values()
    {
        var d = Sample.ToDictionary();
        Assert.Equal("user-123", d["user_id"]);
        Assert.IsType<long>(d["position_ms"]);
        Assert.Equal(1500L, d["position_ms"]);
        Assert.IsType<long>(d["count"]);
        Assert.Equal(0.25, d["ratio"]);
        Assert.Equal(true, d["live"]);
        Assert.Null(d["note"]);
        Assert.Equal(new object?[] { "a", "b" }, (object?[])d["tags"]!);
    }

    [Fact]
    public void With_replaces_adds_and_removes()
    {
        var changed = Sample.With(("count", 4), ("extra", "x"));
        Assert.Equal("""{"user_id":"user-123","position_ms":1500,"ratio":0.25,"live":true,"note":null,"tags":["a","b"],"count":4,"extra":"x"}""", changed.ToString());
        Assert.Equal(3, Sample.GetInt64("count"));

        var removed = Sample.With(("note", null), ("tags", null));
        Assert.Equal(["user_id", "position_ms", "ratio", "live", "count"], removed.FieldNames);
    }

    [Fact]
    public void With_keeps_large_integers_exact()
    {
        // 2^53 + 1 has no exact double; a round trip through double would turn it into 9007199254740992.
        var p = Payload.Create(("big", 9007199254740993L), ("id", long.MaxValue)).With(("other", 1));
        Assert.Equal(9007199254740993L, p.GetInt64("big"));
        Assert.Equal(long.MaxValue, p.GetInt64("id"));
        Assert.Equal("""{"big":9007199254740993,"id":9223372036854775807,"other":1}""", p.ToString());
    }

    [Fact]
    public void Rewrite_keeps_drops_and_replaces_by_name_and_text()
    {
        var seen = new List<(string, string?)>();
        var rewritten = Sample.Rewrite((name, text) =>
        {
            seen.Add((name, text));
            return name switch
            {
                "user_id" => PayloadEdit.Replace("anon"),
                "ratio" or "tags" => PayloadEdit.Drop,
                "position_ms" => PayloadEdit.Replace($"{text}ms"),
                _ => PayloadEdit.Keep,
            };
        });

        Assert.Equal("""{"user_id":"anon","position_ms":"1500ms","live":true,"note":null,"count":3}""", rewritten.ToString());
        Assert.Equal(
            [("user_id", "user-123"), ("position_ms", "1500"), ("ratio", "0.25"), ("live", "true"), ("note", null), ("tags", null), ("count", "3")],
            seen);
    }

    [Fact]
    public void Rewrite_that_keeps_everything_returns_the_same_instance()
    {
        Assert.Same(Sample, Sample.Rewrite((_, _) => PayloadEdit.Keep));
    }

    [Fact]
    public void Parse_compacts_and_keeps_values()
    {
        var p = Payload.Parse("""
            {
              "user_id" : "u\u0031",
              "big": 12345678901234567890,
              "list": [ 1, "two", null ]
            }
            """);
        Assert.Equal("""{"user_id":"u1","big":12345678901234567890,"list":[1,"two",null]}""", p.ToString());
    }

    [Theory]
    [InlineData("""{ "a": { "b": 1 } }""", "Payload values cannot be nested objects.")]
    [InlineData("""[1]""", "A payload must be a JSON object.")]
    [InlineData("""{ "a": [[1]] }""", "Payload arrays may hold only strings, numbers, booleans and nulls.")]
    [InlineData("""{ "a": [{}] }""", "Payload arrays may hold only strings, numbers, booleans and nulls.")]
    public void Parse_refuses_what_is_not_a_flat_object(string json, string message)
    {
        Assert.Equal(message, Assert.Throws<FormatException>(() => Payload.Parse(json)).Message);
    }

    [Fact]
    public void Parse_reports_broken_json_as_format_exception()
    {
        Assert.StartsWith("Invalid payload JSON: ", Assert.Throws<FormatException>(() => Payload.Parse("""{ "a": """)).Message);
    }

    [Fact]
    public void Equality_is_by_bytes()
    {
        var a = Payload.Create(("x", 1), ("y", "z"));
        var b = Payload.Parse("""{ "x": 1, "y": "z" }""");
        var reordered = Payload.Create(("y", "z"), ("x", 1));

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.True(a.Equals((object)b));
        Assert.NotEqual(a, reordered);
        Assert.False(a.Equals(null));
    }

    [Fact]
    public void Created_and_parsed_payloads_agree_on_escaping()
    {
        // The same JSON must give the same bytes whichever way it was built, or equal events compare unequal.
        var created = Payload.Create(("title", "Café + crème <b> & 'quotes'"), ("at", new DateTimeOffset(2024, 12, 26, 12, 0, 0, TimeSpan.FromHours(1))));
        var parsed = Payload.Parse(created.ToString());

        Assert.Equal(created, parsed);
        Assert.Equal("""{"title":"Café + crème <b> & 'quotes'","at":"2024-12-26T12:00:00.0000000+01:00"}""", created.ToString());
    }

    [Fact]
    public void Json_elements_can_be_values()
    {
        using var doc = JsonDocument.Parse("""[1, "two"]""");
        Assert.Equal("""{"v":[1,"two"]}""", Payload.Create(("v", doc.RootElement)).ToString());
    }
    [Fact]
    public void Repeated_ids_read_from_different_payloads_are_one_string()
    {
        // Entity state keeps the ids it reads; decoding each event's copy of "u-4711" would allocate and keep one per event.
        var first = Payload.Parse("""{"user_id":"u-4711","title":"Café"}""").GetString("user_id");
        var second = Payload.Parse("""{"title":"x","user_id":"u-4711"}""").GetString("user_id");

        Assert.Equal("u-4711", second);
        Assert.Same(first, second);
        Assert.Same(first, Payload.Parse("""{"user_id":["u-4711"]}""").GetStringArray("user_id")[0]);
    }

    [Fact]
    public void Distinct_values_are_read_without_the_shared_table()
    {
        // A session id: one per showing. Read through the table it would take a slot from an id that repeats.
        var session = Payload.Parse("""{"ad_session_id":"5f0c2d9e8b7a4c1d9e0f1a2b3c4d5e6f","user_id":"u-4712"}""");

        Assert.Equal("5f0c2d9e8b7a4c1d9e0f1a2b3c4d5e6f", session.GetDistinctString("ad_session_id"));
        Assert.NotSame(session.GetDistinctString("ad_session_id"), session.GetDistinctString("ad_session_id"));
        Assert.Null(session.GetDistinctString("missing"));
        Assert.Null(Payload.Parse("""{"ad_session_id":7}""").GetDistinctString("ad_session_id"));
        Assert.Equal("a\"b", Payload.Parse("""{"s":"a\"b"}""").GetDistinctString("s"));
        // The shared reader still shares.
        Assert.Same(session.GetString("user_id"), session.GetString("user_id"));
    }

    [Fact]
    public void Values_the_table_does_not_keep_still_read_correctly()
    {
        var accented = Payload.Parse("""{"t":"Café"}""");
        var escaped = Payload.Parse("""{"t":"a\u0062c"}""");
        var longValue = new string('v', 200);
        var @long = Payload.Create(("t", longValue));

        Assert.Equal("Café", accented.GetString("t"));
        Assert.NotSame(accented.GetString("t"), accented.GetString("t"));
        Assert.Equal("abc", escaped.GetString("t"));
        Assert.Equal(longValue, @long.GetString("t"));
        Assert.NotSame(@long.GetString("t"), @long.GetString("t"));
        // Many distinct ids share the fixed table: each still reads back as itself.
        for (var i = 0; i < 200_000; i += 997)
        {
            var id = $"d-{i}";
            Assert.Equal(id, Payload.Create(("device_id", id)).GetString("device_id"));
        }
    }
    [Fact]
    public void A_built_payload_has_the_bytes_Create_makes_of_the_same_fields()
    {
        var seen = new DateTimeOffset(2026, 12, 3, 10, 0, 0, 123, TimeSpan.FromHours(2));
        var expected = Payload.Create(("label", "WATCHES"), ("created", true), ("count", 42L), ("weight", 0.25), ("none", null),
            ("first_seen", EventJson.FormatTimestamp(seen)), ("last_seen", EventJson.FormatTimestamp(seen.ToUniversalTime())));

        using var b = Payload.Build();
        b.String("label", "WATCHES");
        b.Boolean("created", true);
        b.Number("count", 42L);
        b.Number("weight", 0.25);
        b.Number("none", null);
        b.Timestamp("first_seen", seen);
        b.Timestamp("last_seen", seen.ToUniversalTime());

        Assert.Equal(expected.ToString(), b.End().ToString());
    }

    [Fact]
    public void A_builder_refuses_a_repeated_field_and_leaves_the_next_payload_intact()
    {
        var b = Payload.Build();
        b.String("a", "1");
        try
        {
            Assert.Throws<ArgumentException>(() =>
            {
                using var inner = Payload.Build();
                inner.String("x", "1");
                inner.String("x", "2");
            });
            b.Number("b", 2L);
            Assert.Equal("""{"a":"1","b":2}""", b.End().ToString());
        }
        finally { b.Dispose(); }
        Assert.Equal("""{"c":3}""", Payload.Create(("c", 3)).ToString());
    }
}

public class PayloadFieldReaderTests
{
    // Escaped names and values, arrays to skip, a repeated name, values of other kinds than the getter asks for.
    private static readonly Payload Tricky = Payload.FromTrustedCompactJson(Encoding.UTF8.GetBytes(
        """{"tags":["x","y"],"campaign\u005fid":"c-1","n":"not a number","n2":12,"device_id":"d\u00e9v","campaign_id":"c-2","cost":1.5,"session":"s-1","big":99999999999999999999,"none":null}"""));

    [Fact]
    public void Reads_each_field_as_the_getters_do()
    {
        var strings = new Dictionary<string, string?>();
        var distinct = new Dictionary<string, string?>();
        var numbers = new Dictionary<string, long?>();
        var fields = Tricky.Fields();
        var names = new List<string>();
        foreach (var name in new[] { "tags", "campaign_id", "n", "n2", "device_id", "campaign_id", "cost", "session", "big", "none" })
        {
            Assert.True(fields.MoveNext());
            Assert.True(fields.NameIs(Encoding.UTF8.GetBytes(name)));
            Assert.False(fields.NameIs("something_else"u8));
            // The first occurrence is what the getters read.
            if (strings.ContainsKey(name)) continue;
            strings[name] = fields.String;
            distinct[name] = fields.DistinctString;
            numbers[name] = fields.Int64;
            names.Add(name);
        }
        Assert.False(fields.MoveNext());
        Assert.False(fields.MoveNext());

        foreach (var name in names)
        {
            Assert.Equal(Tricky.GetString(name), strings[name]);
            Assert.Equal(Tricky.GetDistinctString(name), distinct[name]);
            Assert.Equal(Tricky.GetInt64(name), numbers[name]);
        }
        Assert.Equal("c-1", strings["campaign_id"]);
        Assert.Equal("dév", strings["device_id"]);
        Assert.Equal(12, numbers["n2"]);
        Assert.Null(numbers["big"]);
        Assert.Null(strings["none"]);
    }

    [Fact]
    public void An_empty_payload_has_no_fields()
    {
        var fields = Payload.Empty.Fields();
        Assert.False(fields.MoveNext());
    }

    [Theory]
    [InlineData("""{"user_id":"user-123"}""", "user_id")]
    [InlineData("""{"a":1,"user_id":"d\u00e9j\u00e0"}""", "user_id")]
    [InlineData("""{"user\u005fid":"x\ny"}""", "user_id")]
    [InlineData("""{"user_id":"日本"}""", "user_id")]
    [InlineData("""{"user_id":""}""", "user_id")]
    public void Hashes_a_string_field_as_the_string_would_hash(string json, string name)
    {
        // Trusted as written, so that escapes stay escapes.
        var payload = Payload.FromTrustedCompactJson(Encoding.UTF8.GetBytes(json));
        Assert.True(payload.TryHashString(name, out var hash));
        Assert.Equal(FnvHash.Fnv1a64(payload.GetString(name)!), hash);
    }

    [Theory]
    [InlineData("""{"user_id":7}""")]
    [InlineData("""{"user_id":null}""")]
    [InlineData("""{"other":"x"}""")]
    public void Has_no_hash_for_a_missing_or_non_string_field(string json) =>
        Assert.False(Payload.Parse(json).TryHashString("user_id", out _));
}
