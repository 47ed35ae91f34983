using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Keystone.Silo.Gateway;

/// <summary><c>/status</c>: the pipeline at a glance (stages, rates, lag, alerts), read live from the API by the page itself.</summary>
internal static class StatusPageEndpoints
{
    private static readonly Lazy<string> StatusPage = new(() =>
    {
        using var stream = typeof(StatusPageEndpoints).Assembly.GetManifestResourceStream("status.html")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static void MapStatusPage(this IEndpointRouteBuilder app) =>
        app.MapGet("/status", GetStatusPage).ExcludeFromDescription().RequireAuthorization(ScopePolicies.Admin);

    internal static ContentHttpResult GetStatusPage() => TypedResults.Content(StatusPage.Value, "text/html; charset=utf-8");
}
