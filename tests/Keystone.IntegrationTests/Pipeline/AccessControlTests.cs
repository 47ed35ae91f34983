using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Keystone.IntegrationTests.Infrastructure;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>API keys and scopes on the real Kestrel port.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AccessControlTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Writes_need_a_key_with_the_right_scope_reads_are_open_and_each_key_has_a_rate_limit()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Security:RequestsPerMinute"] = "5";
        settings["Keystone:Dashboard"] = "true";
        await using var silo = await TestSilo.StartAsync(settings);
        using var anonymous = new HttpClient { BaseAddress = silo.Http.BaseAddress };
        using var producer = new HttpClient { BaseAddress = silo.Http.BaseAddress };
        producer.DefaultRequestHeaders.Add("X-Api-Key", TestSilo.IngestKey);
        StringContent Events() => TestEvents.JsonContent(TestEvents.JsonArray([TestEvents.Play("acl-u1", "acl-v1")]));

        var missing = await anonymous.PostAsync("/v1/events", Events());
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Contains("needs an API key with the 'ingest' scope", await missing.Content.ReadAsStringAsync());
        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/v1/events") { Content = Events() })
        {
            wrong.Headers.Add("X-Api-Key", "not-a-key-at-all-000");
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.SendAsync(wrong)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.Accepted, (await producer.PostAsync("/v1/events", Events())).StatusCode);
        var forbidden = await producer.PutAsync("/v1/ads/campaigns/acl-c1", new StringContent("{\"name\":\"x\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Contains("'test-ingest' does not have the 'admin' scope", await forbidden.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await silo.Http.PutAsync("/v1/ads/campaigns/acl-c1", new StringContent("{\"name\":\"x\"}", Encoding.UTF8, "application/json"))).StatusCode);

        // Reads are open; dead letters (raw events) and the dashboard are not.
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/v1/topics")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/dead-letters")).StatusCode);
        var dashboard = await anonymous.GetAsync("/dashboard");
        Assert.Equal(HttpStatusCode.Unauthorized, dashboard.StatusCode);
        Assert.Equal("Basic", dashboard.Headers.WwwAuthenticate.Single().Scheme);
        using (var browser = new HttpRequestMessage(HttpMethod.Get, "/dashboard"))
        {
            browser.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("anyone:" + TestSilo.AdminKey)));
            // Not following the dashboard's redirect: HttpClient drops credentials on redirects (browsers re-send them).
            using var noRedirect = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = silo.Http.BaseAddress };
            var shown = await noRedirect.SendAsync(browser);
            Assert.True(shown.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden), $"{(int)shown.StatusCode} {await shown.Content.ReadAsStringAsync()}");
        }

        // Each endpoint needs the scope its effect calls for: without a key, 401 naming the scope; open ones answer
        // anything but 401/403. A key without the scope gets 403, which does not count against its limit either.
        (string Method, string Path, string? Scope)[] endpoints =
        [
            ("POST", "/v1/events", "ingest"),
            ("PUT", "/v1/routing/rules", "admin"),
            ("POST", "/v1/routing/rules/versions/3/rollback", "admin"),
            ("POST", "/v1/schemas/video.play.started/versions", "admin"),
            ("PUT", "/v1/ads/campaigns/c1", "admin"),
            ("POST", "/v1/archive/replay", "admin"),
            ("POST", "/v1/dead-letters/x/replay", "admin"),
            ("POST", "/v1/dead-letters/replay", "admin"),
            ("GET", "/v1/dead-letters", "admin"),
            ("GET", "/v1/exports/ads-billing", "admin"),
            ("GET", "/v1/exports/files/ads-billing/2026-12-04/13/20261204T1300000000000Z-p000.jsonl", "admin"),
            ("GET", "/dashboard", "admin"),
            ("GET", "/status", "admin"),
            ("GET", "/v1/topics", null),
            ("GET", "/v1/stats", null),
            ("GET", "/v1/ads/eligibility", null),
            ("POST", "/v1/routing/rules/validate", null),
            ("POST", "/v1/routing/rules/dry-run", null),
            ("GET", "/health/ready", null),
            ("GET", "/health/live", null),
            ("GET", "/metrics", null),
            ("GET", "/openapi/v1.json", null),
        ];
        foreach (var (method, path, scope) in endpoints)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method != "GET") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
            var response = await anonymous.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            if (scope is null)
            {
                Assert.True(response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden), $"{method} {path}: {(int)response.StatusCode} {body}");
                continue;
            }
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path}: {(int)response.StatusCode} {body}");
            Assert.Contains($"needs an API key with the '{scope}' scope", body);
            if (scope != "admin") continue;
            using var withIngestKey = new HttpRequestMessage(new HttpMethod(method), path);
            if (method != "GET") withIngestKey.Content = new StringContent("{}", Encoding.UTF8, "application/json");
            var refused = await producer.SendAsync(withIngestKey);
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} with the ingest key: {(int)refused.StatusCode}");
        }

        // 5 requests a minute per key: the producer is refused with 429 after at most 5 more (10 if the minute turns
        // over meanwhile); refused requests (401, 403) do not count.
        HttpResponseMessage limited;
        var accepted = 1;
        while ((limited = await producer.PostAsync("/v1/events", Events())).StatusCode == HttpStatusCode.Accepted && accepted < 12) accepted++;
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.InRange(accepted, 5, 10);
        Assert.Equal("60", limited.Headers.GetValues("Retry-After").Single());
    }
}
