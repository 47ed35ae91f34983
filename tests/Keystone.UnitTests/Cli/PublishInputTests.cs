using System.Text;
using Keystone.Cli;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;

namespace Keystone.UnitTests.Cli;

public class PublishInputTests
{
    private static KeystoneEvent Login(string user = "user-1") => KeystoneEvent.Create(
        "user.login",
        Payload.Create(("user_id", user), ("device_id", "device-1"), ("profile_id", "profile-1"), ("method", "token")),
        new EventSource("identity-service"));

    private static string DeadLetterLine(KeystoneEvent e) =>
        $"{{\"dead_letter\":{{\"reason\":\"send timed out after 10 s\",\"attempts\":4,\"at\":\"2025-01-01T00:00:00Z\"}},\"event\":{EventJson.Serialize(e)}}}";

    private static (PreparedInput Input, ParsedBatch Parsed) Parse(string text, BodyFormat format = BodyFormat.Auto)
    {
        var input = PublishInput.Prepare(Encoding.UTF8.GetBytes(text), format);
        return (input, EventBatchParser.Parse(input.Body, input.Format, SchemaRegistry.Embedded));
    }

    [Fact]
    public void Ndjson_records_are_located_by_their_line_in_the_file()
    {
        var text = string.Join('\n', EventJson.Serialize(Login()), "", "{ not json", "   ", EventJson.Serialize(Login("")), EventJson.Serialize(Login()));
        var (input, parsed) = Parse(text);

        Assert.Equal(BodyFormat.Ndjson, input.Format);
        Assert.Equal([1, 3, 5, 6], input.RecordLines);
        Assert.Equal(2, parsed.Events.Count);
        Assert.Equal(["line 3", "line 5"], parsed.Rejections.Select(r => input.Locate(r.Index)));
        Assert.Equal(["line 1", "line 6"], parsed.Indexes.Select(input.Locate));
    }

    [Fact]
    public void Dead_letter_lines_are_unwrapped_to_their_events()
    {
        var a = Login("user-a");
        var b = Login("user-b");
        var text = DeadLetterLine(a) + "\n" + EventJson.Serialize(b) + "\n";
        var (input, parsed) = Parse(text);

        Assert.Equal(1, input.Unwrapped);
        Assert.Empty(parsed.Rejections);
        Assert.Equal([a.EventId, b.EventId], parsed.Events.Select(e => e.EventId));
    }

    [Fact]
    public void A_single_dead_letter_line_is_unwrapped_too()
    {
        var e = Login();
        var (input, parsed) = Parse(DeadLetterLine(e));
        Assert.Equal(1, input.Unwrapped);
        Assert.Equal(e.EventId, Assert.Single(parsed.Events).EventId);
    }

    [Fact]
    public void Json_arrays_are_located_by_index()
    {
        var text = $"[\n  {EventJson.Serialize(Login())},\n  {EventJson.Serialize(Login(""))}\n]";
        var (input, parsed) = Parse(text);

        Assert.Equal(BodyFormat.JsonArray, input.Format);
        Assert.Single(parsed.Events);
        Assert.Equal("index 1", input.Locate(Assert.Single(parsed.Rejections).Index));
    }

    [Fact]
    public void A_pretty_printed_single_event_is_one_json_value()
    {
        var e = Login();
        var pretty = System.Text.Json.JsonSerializer.Serialize(
            System.Text.Json.JsonDocument.Parse(EventJson.Serialize(e)).RootElement,
            new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var (input, parsed) = Parse(pretty);

        Assert.Equal(BodyFormat.JsonArray, input.Format);
        Assert.Equal(e.EventId, Assert.Single(parsed.Events).EventId);
    }

    [Fact]
    public void A_byte_order_mark_is_ignored()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes(EventJson.Serialize(Login()))).ToArray();
        var input = PublishInput.Prepare(bytes, BodyFormat.Auto);
        Assert.Single(EventBatchParser.Parse(input.Body, input.Format, SchemaRegistry.Embedded).Events);
    }

    [Fact]
    public void The_parser_skips_a_byte_order_mark_itself()
    {
        // keystone publish - reads whatever a pipe gives it; the parser must not depend on PublishInput for this.
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes(EventJson.Serialize(Login()))).ToArray();
        var parsed = EventBatchParser.Parse(bytes, BodyFormat.Auto, SchemaRegistry.Embedded);
        Assert.Null(parsed.BodyError);
        Assert.Single(parsed.Events);
    }

    [Fact]
    public void An_explicit_format_is_respected()
    {
        var text = EventJson.Serialize(Login()) + "\n" + EventJson.Serialize(Login());
        Assert.Equal(BodyFormat.JsonArray, PublishInput.Prepare(Encoding.UTF8.GetBytes(text), BodyFormat.JsonArray).Format);
        Assert.Equal(BodyFormat.Ndjson, PublishInput.Prepare(Encoding.UTF8.GetBytes("[]"), BodyFormat.Ndjson).Format);
    }

    [Fact]
    public void Crlf_line_endings_keep_line_numbers()
    {
        var text = EventJson.Serialize(Login()) + "\r\n\r\n" + EventJson.Serialize(Login("")) + "\r\n";
        var (input, parsed) = Parse(text);
        Assert.Equal("line 3", input.Locate(Assert.Single(parsed.Rejections).Index));
    }
}
