using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;

namespace Keystone.Silo.Hosting;

/// <summary>
/// The per-key request limit: ASP.NET Core's rate limiter, one fixed one-minute window per API key name. Requests
/// without a key (open reads, health, metrics) are not limited; refused requests (401, 403) never reach it.
/// </summary>
internal static class KeyRateLimiting
{
    public static void AddKeystoneRateLimiting(this IServiceCollection services, SecurityOptions security)
    {
        services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                security.RequestsPerMinute == 0 || context.User.Identity is not { IsAuthenticated: true, Name: { } key }
                    ? RateLimitPartition.GetNoLimiter("")
                    : RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
                    {
                        PermitLimit = security.RequestsPerMinute,
                        Window = TimeSpan.FromMinutes(1),
                        QueueLimit = 0,
                    }));
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = (rejected, _) => OnRejected(rejected, security);
        });
    }

    private static ValueTask OnRejected(OnRejectedContext rejected, SecurityOptions security)
    {
        var context = rejected.HttpContext;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
        context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var detail = $"API key '{context.User.Identity?.Name}' is over its limit of {security.RequestsPerMinute} requests a minute";
        return new ValueTask(ScopeProblemResultHandler.Problem(context, StatusCodes.Status429TooManyRequests, detail));
    }
}
