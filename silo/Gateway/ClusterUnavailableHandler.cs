using Microsoft.AspNetCore.Diagnostics;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace Keystone.Silo.Gateway;

/// <summary>
/// A call into the cluster that got no answer in time, or found its silo gone, is answered <c>503</c> with
/// <c>Retry-After</c> and the reason, not a bare <c>500</c>: HTTP clients retry the one and not the other, and for events
/// a retry is safe (de-duplicated by <c>event_id</c>). Anything else stays a <c>500</c>.
/// </summary>
internal sealed class ClusterUnavailableHandler(IProblemDetailsService problems, ILogger<ClusterUnavailableHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (Transient(exception) is not { } cause) return false;
        logger.LogWarning("{Method} {Path}: the cluster did not answer ({Type}: {Message}); answered 503",
            httpContext.Request.Method, httpContext.Request.Path, cause.GetType().Name, cause.Message);
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = "5";
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Cluster unavailable",
                Detail = Describe(cause),
            },
        });
    }

    internal static string Describe(Exception cause) => cause is TimeoutException
        ? "the cluster did not answer in time (Orleans' response timeout); the request may or may not have taken effect. " +
          "Try again: events are de-duplicated by event_id, so sending them again is safe"
        : $"the silo that holds this request's grain is unavailable ({cause.GetType().Name}); try again once the cluster " +
          "has moved it (a silo that stopped without leaving is declared dead within about a minute)";

    /// <summary>The transient cluster failure in <paramref name="exception"/>'s chain, if there is one.</summary>
    internal static Exception? Transient(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is AggregateException { InnerExceptions.Count: > 1 })
                return null;
            else if (e is TimeoutException or SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
                or ClientNotAvailableException or GatewayTooBusyException)
                return e;
        return null;
    }
}
