using Microsoft.AspNetCore.Diagnostics;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace Keystone.Silo.Gateway;

/// <summary>
/// A call into the cluster that got no answer in time, or found its silo gone, is answered <c>503</c> with
/// <c>Retry-After</c> and the reason, not a bare <c>500</c>: HTTP clients retry the one and not the other, and for events
/// a retry is safe (de-duplicated by <c>event_id</c>). So is a call whose storage failed or did not answer after the
/// storage client's own retries (listing dead letters or exports, reading the archive). Anything else
/// stays a <c>500</c>.
/// </summary>
internal sealed class ClusterUnavailableHandler(IProblemDetailsService problems, ILogger<ClusterUnavailableHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        string title, detail;
        if (StorageFailure(exception) is { } storage)
        {
            logger.LogWarning("{Method} {Path}: storage failed or did not answer ({Type}: {Message}); answered 503",
                httpContext.Request.Method, httpContext.Request.Path, storage.GetType().Name, storage.Message);
            (title, detail) = ("Storage unavailable", DescribeStorage(storage));
        }
        else if (Transient(exception) is { } cause)
        {
            logger.LogWarning("{Method} {Path}: the cluster did not answer ({Type}: {Message}); answered 503",
                httpContext.Request.Method, httpContext.Request.Path, cause.GetType().Name, cause.Message);
            (title, detail) = ("Cluster unavailable", Describe(cause));
        }
        else
        {
            return false;
        }
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = "5";
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = title,
                Detail = detail,
            },
        });
    }

    /// <summary>The storage failure that <paramref name="exception"/> is, if it is one a later try may not meet: a
    /// storage answer of 408, 429 or 5xx, no answer at all (the storage client's per-try timeout, a dropped connection),
    /// or the storage client's "retry failed" made only of such failures.</summary>
    internal static Exception? StorageFailure(Exception exception) => exception switch
    {
        Azure.RequestFailedException { Status: 0 or 408 or 429 or >= 500 } => exception,
        // The Azure SDK's per-try timeout (Keystone:Storage:RequestTryTimeout). Its wording is its only mark: the
        // exception is a plain cancellation, as the caller's own would be.
        OperationCanceledException when exception.Message.Contains("exceeded the configured timeout", StringComparison.Ordinal) => exception,
        HttpRequestException or IOException when exception is not FileNotFoundException and not DirectoryNotFoundException => exception,
        AggregateException { InnerExceptions.Count: > 0 } all when all.InnerExceptions.All(e => StorageFailure(e) is not null) => all.InnerExceptions[^1],
        _ => null,
    };

    internal static string DescribeStorage(Exception failure) =>
        $"the storage this request needs failed or did not answer ({failure.GetType().Name}: {FirstLine(failure.Message)}); try again " +
        "(each storage try waits Keystone:Storage:RequestTryTimeout and is retried Keystone:Storage:RequestRetries times first)";

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

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
