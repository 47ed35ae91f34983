using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;
using Orleans.Configuration;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>What a REST caller gets when the cluster does not answer its call in time: a 503 it can retry, not a 500.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClusterUnavailableTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task A_call_the_cluster_does_not_answer_in_time_is_a_503_with_retry_after_and_the_reason()
    {
        // Its own emulator, stopped while a lake query waits on it; Orleans' response timeout cut to 3 s, below the
        // query's own 15 s storage timeout, so that the grain call times out first.
        await using var storage = await AzuriteProcess.StartAsync();
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:ConnectionString"] = storage.ConnectionString;
        await using var silo = await TestSilo.StartAsync(settings, s => s.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(3)));
        var now = DateTimeOffset.UtcNow;
        var body = System.Text.Json.JsonSerializer.Serialize(new { sql = "SELECT count(*) FROM events", from = now.AddHours(-1).ToString("O"), to = now.ToString("O") });

        HttpResponseMessage response;
        using (new ProcessPause(storage.ProcessId))
            response = await silo.Http.PostAsync("/v1/analytics/query", new StringContent(body, Encoding.UTF8, "application/json"));

        var text = await response.Content.ReadAsStringAsync();
        output.WriteLine($"{(int)response.StatusCode} {text}");
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode} {text}");
        Assert.Equal("5", response.Headers.RetryAfter?.ToString());
        var problem = JsonNode.Parse(text)!;
        Assert.Equal("Cluster unavailable", problem["title"]!.GetValue<string>());
        Assert.StartsWith("the cluster did not answer in time", problem["detail"]!.GetValue<string>());
        // Logged as a warning with the call and the cause, for the operator.
        Assert.Contains("POST /v1/analytics/query: the cluster did not answer (TimeoutException", RecentWarnings.Instance.Describe(TimeSpan.FromMinutes(1), max: 200));
    }
}
