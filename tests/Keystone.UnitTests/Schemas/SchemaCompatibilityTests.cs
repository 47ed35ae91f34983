using Keystone.Schemas;

namespace Keystone.UnitTests.Schemas;

public class SchemaCompatibilityTests
{
    private const string V1 = """
        { "type": "object", "additionalProperties": false, "required": ["user_id", "quality"],
          "properties": { "user_id": { "type": "string" }, "quality": { "type": "string", "enum": ["4K", "HD"] }, "position_ms": { "type": "integer", "minimum": 0 } } }
        """;

    private static EventSchema Schema(string version, string json) => SchemaLoader.Parse("test.event", version, json);

    private static IReadOnlyList<string> Check(string next, string version = "1.1") => SchemaCompatibility.Problems(Schema("1.0", V1), Schema(version, next));

    [Fact]
    public void Adding_an_optional_field_is_compatible() =>
        Assert.Empty(Check(V1.Replace("\"position_ms\": { \"type\": \"integer\", \"minimum\": 0 }", "\"position_ms\": { \"type\": \"integer\", \"minimum\": 0 }, \"hdr\": { \"type\": \"boolean\" }")));

    [Theory]
    [InlineData("\"position_ms\": { \"type\": \"integer\", \"minimum\": 0 }", "\"position_ms\": { \"type\": \"string\" }", "field 'position_ms': type changed from integer to string")]
    [InlineData(", \"position_ms\": { \"type\": \"integer\", \"minimum\": 0 }", "", "field 'position_ms' was removed")]
    [InlineData("[\"user_id\", \"quality\"]", "[\"user_id\", \"quality\", \"position_ms\"]", "field 'position_ms': became required")]
    [InlineData("[\"4K\", \"HD\"]", "[\"4K\", \"HD\", \"SD\"]", "field 'quality': allowed values changed from [4K, HD] to [4K, HD, SD]")]
    [InlineData("\"minimum\": 0", "\"minimum\": 10", "field 'position_ms': range changed from [0, ] to [10, ]")]
    [InlineData("\"additionalProperties\": false", "\"additionalProperties\": true", "additionalProperties changed from false to true")]
    public void Any_other_change_is_refused_with_the_reason(string from, string to, string expected) =>
        Assert.Contains(expected, Check(V1.Replace(from, to)));

    [Fact]
    public void A_new_required_field_is_refused() =>
        Assert.Equal(["new field 'hdr' is required; a new version may only add optional fields"],
            Check(V1.Replace("[\"user_id\", \"quality\"]", "[\"user_id\", \"quality\", \"hdr\"]").Replace("\"user_id\": { \"type\": \"string\" },", "\"user_id\": { \"type\": \"string\" }, \"hdr\": { \"type\": \"boolean\" },")));

    [Fact]
    public void The_version_must_go_up() =>
        Assert.Equal(["version 0.9 must be greater than the latest version 1.0"], Check(V1, "0.9"));
}
