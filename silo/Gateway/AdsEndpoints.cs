using System.Text.Json;
using Keystone.Ads;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

/// <summary>Ad campaigns: totals and rates, per-window series, settings, and the ad server's eligibility question.</summary>
internal static class AdsEndpoints
{
    private const int MaxSettingsBytes = 64 * 1024;

    public static void MapAds(this IEndpointRouteBuilder app)
    {
        var ads = app.MapGroup("/v1/ads").WithTags("Ads").RequireAuthorization(ScopePolicies.Read);
        ads.MapGet("/operators", GetAdsOperators).WithName("GetAdsOperators")
          .WithSummary("Per partition: log position, events, billable, invalid, duplicates, checkpoints, publish-to-counted latency per event type, committed-export records written and pending");
        ads.MapGet("/campaigns/{id}", GetCampaign).WithName("GetCampaign")
          .WithSummary("Totals, CTR, completion and skip rates, spend and budget, invalid traffic by reason, ad sessions");
        ads.MapGet("/campaigns/{id}/series", GetCampaignSeries).WithName("GetCampaignSeries")
          .WithSummary("Every figure per 1-minute or 1-hour event-time window");
        ads.MapPut("/campaigns/{id}", PutCampaign).WithName("PutCampaign").RequireAuthorization(ScopePolicies.Admin)
          .WithSummary("Create or update a campaign: name, budget_micros (null: unlimited), frequency_cap {max_impressions, window_seconds} (null: none)")
          .Accepts<CampaignSettingsBody>("application/json");
        ads.MapGet("/eligibility", GetEligibility).WithName("GetEligibility")
          .WithSummary("May this campaign be shown to this profile now? (budget and frequency cap)");
    }

    internal static async Task<Ok<AdsOperatorStats[]>> GetAdsOperators(IClusterClient cluster) =>
        TypedResults.Ok(await PerPartition.Ask(cluster, key => cluster.GetGrain<IAdsOperatorGrain>(key).GetStats()));

    internal static async Task<Results<Ok<CampaignView>, BadRequestProblem, NotFoundProblem>> GetCampaign(string id, IClusterClient cluster)
    {
        if (Ids.Check(id, "campaign id") is { } bad) return bad;
        var view = await cluster.GetGrain<IAdCampaignGrain>(id).GetCampaign();
        return view is null ? Problems.NotFound($"no campaign '{id}'") : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<AdSeriesView>, BadRequestProblem, NotFoundProblem>> GetCampaignSeries(string id, HttpRequest request, IClusterClient cluster)
    {
        if (Ids.Check(id, "campaign id") is { } bad) return bad;
        var window = request.Query["window"];
        var raw = window.Count == 0 ? "1m" : window[0];
        if (window.Count > 1 || raw is not ("1m" or "1h")) return Problems.BadRequest($"query parameter 'window' must be 1m or 1h, got '{window}'");
        var view = await cluster.GetGrain<IAdCampaignGrain>(id).GetSeries(raw == "1h");
        return view is null ? Problems.NotFound($"no campaign '{id}'") : TypedResults.Ok(view);
    }

    internal static async Task<Results<Ok<CampaignView>, BadRequestProblem, TooLargeProblem>> PutCampaign(string id, HttpRequest request, IClusterClient cluster)
    {
        if (Ids.Check(id, "campaign id") is { } bad) return bad;
        if (request.ContentLength > MaxSettingsBytes) return Problems.TooLarge($"campaign settings must be at most {MaxSettingsBytes} bytes");
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer);
        if (buffer.Length > MaxSettingsBytes) return Problems.TooLarge($"campaign settings must be at most {MaxSettingsBytes} bytes");
        if (!TryParseSettings(buffer.ToArray(), out var settings, out var error)) return Problems.BadRequest(error!);
        if (CampaignSettingsRules.Problems(settings!).ToList() is { Count: > 0 } problems) return Problems.BadRequest(string.Join("; ", problems));
        return TypedResults.Ok(await cluster.GetGrain<IAdCampaignGrain>(id).Configure(settings!));
    }

    internal static async Task<Results<Ok<EligibilityView>, BadRequestProblem, NotFoundProblem>> GetEligibility(HttpRequest request, IClusterClient cluster)
    {
        var campaign = request.Query["campaign"];
        var profile = request.Query["profile"];
        if (campaign.Count != 1 || string.IsNullOrEmpty(campaign[0])) return Problems.BadRequest("query parameter 'campaign' is required (once)");
        if (profile.Count != 1 || string.IsNullOrEmpty(profile[0])) return Problems.BadRequest("query parameter 'profile' is required (once)");
        if (Ids.Check(campaign[0]!, "campaign id") is { } badCampaign) return badCampaign;
        if (Ids.Check(profile[0]!, "profile id") is { } badProfile) return badProfile;
        var view = await cluster.GetGrain<IAdCampaignGrain>(campaign[0]!).CheckEligibility(profile[0]!);
        return view is null ? Problems.NotFound($"no campaign '{campaign[0]}'") : TypedResults.Ok(view);
    }

    /// <summary>The PUT body, for the API reference.</summary>
    public sealed record CampaignSettingsBody(string Name, long? BudgetMicros, FrequencyCapBody? FrequencyCap);

    public sealed record FrequencyCapBody(int MaxImpressions, long WindowSeconds);

    // Parsed by hand so that every mistake is named precisely, and unknown (misspelt) fields are refused.
    internal static bool TryParseSettings(byte[] body, out CampaignSettings? settings, out string? error)
    {
        settings = null;
        error = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            error = $"body is not valid JSON: {e.Message}";
            return false;
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return Fail("body must be a JSON object", out error);
            string? name = null;
            long? budget = null;
            FrequencyCap? cap = null;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "name":
                        if (p.Value.ValueKind != JsonValueKind.String) return Fail($"name: expected string, got {Kind(p.Value)}", out error);
                        try
                        {
                            name = p.Value.GetString();
                        }
                        catch (InvalidOperationException)
                        {
                            return Fail("name: not valid Unicode (a lone surrogate escape such as \\ud800)", out error);
                        }
                        break;
                    case "budget_micros":
                        if (p.Value.ValueKind == JsonValueKind.Null) break;
                        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var b)) return Fail($"budget_micros: expected integer or null, got {Kind(p.Value)}", out error);
                        budget = b;
                        break;
                    case "frequency_cap":
                        if (p.Value.ValueKind == JsonValueKind.Null) break;
                        if (p.Value.ValueKind != JsonValueKind.Object) return Fail($"frequency_cap: expected object or null, got {Kind(p.Value)}", out error);
                        int? max = null;
                        long? seconds = null;
                        foreach (var c in p.Value.EnumerateObject())
                        {
                            if (c.Name == "max_impressions" && c.Value.ValueKind == JsonValueKind.Number && c.Value.TryGetInt32(out var m)) max = m;
                            else if (c.Name == "window_seconds" && c.Value.ValueKind == JsonValueKind.Number && c.Value.TryGetInt64(out var s)) seconds = s;
                            else if (c.Name is "max_impressions" or "window_seconds") return Fail($"frequency_cap.{c.Name}: expected a positive integer, got {Kind(c.Value)} {c.Value.GetRawText()}", out error);
                            else return Fail($"frequency_cap.{c.Name}: unknown field (known: max_impressions, window_seconds)", out error);
                        }
                        if (max is null) return Fail("frequency_cap.max_impressions: required", out error);
                        if (seconds is null) return Fail("frequency_cap.window_seconds: required", out error);
                        if (seconds is < 0 or > 100L * 365 * 24 * 3600) return Fail($"frequency_cap.window_seconds: out of range, got {seconds}", out error);
                        cap = new FrequencyCap(max.Value, TimeSpan.FromSeconds(seconds.Value));
                        break;
                    default:
                        return Fail($"{p.Name}: unknown field (known: name, budget_micros, frequency_cap)", out error);
                }
            }
            if (name is null) return Fail("name: required", out error);
            settings = new CampaignSettings(name, budget, cap);
            return true;
        }
    }

    private static bool Fail(string message, out string? error)
    {
        error = message;
        return false;
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => "string",
        JsonValueKind.Number => e.TryGetInt64(out _) ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "array",
        _ => "object",
    };
}
