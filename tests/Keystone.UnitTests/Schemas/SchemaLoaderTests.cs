using Keystone.Schemas;

namespace Keystone.UnitTests.Schemas;

public class SchemaLoaderTests
{
    private static SchemaLoadException Fails(string json, string path = "custom.thing/1.0.json") =>
        Assert.Throws<SchemaLoadException>(() => SchemaLoader.Load(path, json));

    [Fact]
    public void Every_embedded_schema_loads_with_its_origin()
    {
        var schemas = SchemaLoader.LoadEmbedded();

        Assert.Equal(26, schemas.Count);
        Assert.All(schemas, s => Assert.Equal($"{s.EventType}/{s.Version}.json", s.Origin));
        Assert.All(schemas, s => Assert.NotEmpty(s.Fields));
    }

    [Fact]
    public void The_schema_directory_loads_like_the_embedded_set()
    {
        var fromDisk = SchemaLoader.LoadDirectory(RepoFilesPath("grain-interfaces/schemas"));
        Assert.Equal(
            SchemaLoader.LoadEmbedded().Select(s => s.ToString()).Order(StringComparer.Ordinal),
            fromDisk.Select(s => s.ToString()).Order(StringComparer.Ordinal));
    }

    private static string RepoFilesPath(string relative) => Support.RepoFiles.PathOf(relative);

    [Fact]
    public void A_field_schema_compiles_every_keyword()
    {
        var s = SchemaLoader.Load("custom.thing/1.2.json", """
            {
              "type": "object",
              "properties": {
                "name": { "type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$", "x-pii": true },
                "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 3, "enum": ["a", "b"] },
                "score": { "type": ["number", "null"], "minimum": 0, "maximum": 1 }
              },
              "required": ["name"],
              "additionalProperties": true
            }
            """);

        Assert.Equal("custom.thing 1.2", s.ToString());
        Assert.True(s.AdditionalProperties);
        Assert.Equal(["name"], s.PiiFields);
        var name = s.Field("name")!;
        Assert.True(name.Required);
        Assert.Equal((2, 8, "^[a-z]+$"), (name.MinLength, name.MaxLength, name.Pattern));
        var tags = s.Field("tags")!;
        Assert.Equal("array of string", tags.TypeName);
        Assert.Equal(3, tags.MaxItems);
        var score = s.Field("score")!;
        Assert.True(score.Nullable);
        Assert.Equal((0.0, 1.0), (score.Minimum, score.Maximum));
        Assert.False(score.Required);
    }

    [Fact]
    public void Unsupported_document_keyword()
    {
        var e = Fails("""{ "type": "object", "oneOf": [] }""");
        Assert.StartsWith("custom.thing/1.0.json: unsupported keyword 'oneOf' (supported: ", e.Message);
    }

    [Fact]
    public void Unsupported_field_keyword()
    {
        var e = Fails("""{ "properties": { "x": { "type": "string", "const": "a" } } }""");
        Assert.StartsWith("custom.thing/1.0.json: field 'x': unsupported keyword 'const' (supported: ", e.Message);
    }

    [Fact]
    public void Nested_object_type()
    {
        var e = Fails("""{ "properties": { "address": { "type": "object" } } }""");
        Assert.Equal("custom.thing/1.0.json: field 'address': nested objects are not supported; payloads are flat.", e.Message);
    }

    [Fact]
    public void Required_field_not_declared()
    {
        var e = Fails("""{ "properties": { "a": { "type": "string" } }, "required": ["a", "b"] }""");
        Assert.Equal("custom.thing/1.0.json: required field 'b' is not declared in \"properties\".", e.Message);
    }

    [Fact]
    public void Bad_regular_expression()
    {
        var e = Fails("""{ "properties": { "a": { "type": "string", "pattern": "[a-" } } }""");
        Assert.StartsWith("custom.thing/1.0.json: field 'a': \"pattern\" is not a valid regular expression: ", e.Message);
    }

    [Theory]
    [InlineData("custom.thing.json")]
    [InlineData("custom/thing/1.0.json")]
    [InlineData("custom.thing/1.0.yaml")]
    public void Bad_file_layout(string path)
    {
        var e = Fails("{}", path);
        Assert.Equal($"{path}: schema files must be laid out as <event_type>/<version>.json.", e.Message);
    }

    [Fact]
    public void Bad_event_type_and_version_names()
    {
        Assert.Equal(
            "Video.Play/1.0.json: 'Video.Play' is not a valid event type (lower-case dotted words such as 'video.play.started').",
            Fails("{}", "Video.Play/1.0.json").Message);
        Assert.Equal(
            "custom.thing/v1.json: 'v1' is not a valid version (major.minor, such as '1.0').",
            Fails("{}", "custom.thing/v1.json").Message);
    }

    [Theory]
    [InlineData("""{ "properties": { "a": { "type": ["string", "integer"] } } }""", "field 'a': \"type\" must name exactly one of string, integer, number, boolean, array (optionally with \"null\").")]
    [InlineData("""{ "properties": { "a": { "type": "date" } } }""", "field 'a': unknown type 'date'.")]
    [InlineData("""{ "properties": { "a": { "description": "no type" } } }""", "field 'a': \"type\" is required.")]
    [InlineData("""{ "properties": { "a": { "type": "integer", "enum": ["1"] } } }""", "field 'a': \"enum\" is only supported on strings.")]
    [InlineData("""{ "properties": { "a": { "type": "string", "format": "email" } } }""", "field 'a': unsupported \"format\" (supported: uuid, date-time).")]
    [InlineData("""{ "properties": { "a": { "type": "array", "items": { "type": "array" } } } }""", "field 'a': nested arrays are not supported.")]
    [InlineData("""{ "properties": { "a": { "type": "string", "x-pii": "yes" } } }""", "field 'a': \"x-pii\" must be true or false.")]
    [InlineData("""{ "type": "array" }""", "the payload schema's \"type\" must be \"object\".")]
    [InlineData("""{ "additionalProperties": {} }""", "\"additionalProperties\" must be true or false.")]
    [InlineData("""[]""", "a schema must be a JSON object.")]
    public void Other_unusable_schemas(string json, string problem)
    {
        Assert.Equal($"custom.thing/1.0.json: {problem}", Fails(json).Message);
    }

    [Fact]
    public void Not_json()
    {
        Assert.StartsWith("custom.thing/1.0.json: not valid JSON: ", Fails("{ nope").Message);
    }

    [Fact]
    public void Registering_the_same_version_twice_is_an_error()
    {
        var a = SchemaLoader.Load("custom.thing/1.0.json", "{}");
        var e = Assert.Throws<SchemaLoadException>(() => new SchemaRegistry([a, a]));
        Assert.Equal("Schema custom.thing 1.0 is registered twice (custom.thing/1.0.json and custom.thing/1.0.json).", e.Message);
    }

    [Fact]
    public void A_missing_directory_is_reported()
    {
        var dir = Path.Combine(Path.GetTempPath(), "keystone-no-such-dir-" + Guid.NewGuid().ToString("N"));
        Assert.Equal($"Schema directory '{dir}' does not exist.", Assert.Throws<SchemaLoadException>(() => SchemaLoader.LoadDirectory(dir)).Message);
    }
}
