using System.Net;
using System.Text.Json.Nodes;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>Reads committed exports the way a consumer would: the REST listing, then each file.</summary>
public static class Exports
{
    /// <summary>Every record of a sink committed in the last hour.</summary>
    public static async Task<List<JsonNode>> ReadAsync(HttpClient http, string sink)
    {
        var records = new List<JsonNode>();
        var from = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O"));
        var listing = await http.GetAsync($"/v1/exports/{sink}?from={from}");
        var text = await listing.Content.ReadAsStringAsync();
        Assert.True(listing.IsSuccessStatusCode, $"GET /v1/exports/{sink}: {(int)listing.StatusCode} {text}");
        foreach (var file in JsonNode.Parse(text)!["files"]!.AsArray())
        {
            var response = await http.GetAsync($"/v1/exports/files/{file!["name"]!.GetValue<string>()}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
            var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(file["records"]!.GetValue<int>(), lines.Length);
            records.AddRange(lines.Select(line => JsonNode.Parse(line)!));
        }
        return records;
    }

    public static IEnumerable<Guid> EventIds(IEnumerable<JsonNode> records) => records.Select(r => Guid.Parse(r["event_id"]!.GetValue<string>()));
}
