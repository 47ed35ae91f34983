using System.Globalization;
using System.Reflection;
using Keystone.Topics;
using Microsoft.AspNetCore.Http.Metadata;

namespace Keystone.Silo.Gateway;

/// <summary>RFC 7807 problem responses; <c>detail</c> (also as <c>error</c>) says exactly what was wrong.</summary>
internal static class Problems
{
    public static BadRequestProblem BadRequest(string detail, IDictionary<string, object?>? extra = null) => new(detail, extra);
    public static NotFoundProblem NotFound(string detail) => new(detail);
    public static TooLargeProblem TooLarge(string detail) => new(detail);
    public static UnsupportedMediaTypeProblem UnsupportedMediaType(string detail) => new(detail);
    public static ConflictProblem Conflict(string detail) => new(detail);
    public static BusyProblem Busy(string detail) => new(detail);

    /// <summary>Reads an integer query parameter within bounds; null when absent.</summary>
    public static bool TryInt(HttpRequest request, string name, int min, int max, int fallback, out int value, out BadRequestProblem? problem)
    {
        value = fallback;
        problem = null;
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) return true;
        if (raw.Count > 1 || !int.TryParse(raw[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            problem = BadRequest($"query parameter '{name}' must be an integer from {min} to {max}, got '{raw}'");
            return false;
        }
        return true;
    }
}

/// <summary>
/// A problem response of one status. Each status is its own type, so a handler's return type
/// (<c>Results&lt;Ok&lt;T&gt;, BadRequestProblem, NotFoundProblem&gt;</c>) tells the OpenAPI document every answer it gives.
/// </summary>
public abstract class ProblemResult : IResult, IStatusCodeHttpResult
{
    private readonly IResult _problem;

    protected ProblemResult(int status, string title, string detail, IDictionary<string, object?>? extra)
    {
        StatusCode = status;
        Detail = detail;
        var extensions = new Dictionary<string, object?> { ["error"] = detail };
        if (extra is not null)
            foreach (var (k, v) in extra) extensions[k] = v;
        _problem = TypedResults.Problem(detail: detail, statusCode: status, title: title, extensions: extensions);
    }

    public int? StatusCode { get; }

    public string Detail { get; }

    public virtual Task ExecuteAsync(HttpContext httpContext) => _problem.ExecuteAsync(httpContext);

    protected static void Describe(EndpointBuilder builder, int status) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(status, typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), ["application/problem+json"]));
}

public sealed class BadRequestProblem(string detail, IDictionary<string, object?>? extra = null)
    : ProblemResult(StatusCodes.Status400BadRequest, "Bad request", detail, extra), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status400BadRequest);
}

public sealed class NotFoundProblem(string detail) : ProblemResult(StatusCodes.Status404NotFound, "Not found", detail, null), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status404NotFound);
}

public sealed class TooLargeProblem(string detail) : ProblemResult(StatusCodes.Status413PayloadTooLarge, "Payload too large", detail, null), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status413PayloadTooLarge);
}

public sealed class UnsupportedMediaTypeProblem(string detail)
    : ProblemResult(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", detail, null), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status415UnsupportedMediaType);
}

/// <summary>503 with a <c>Retry-After</c>: nothing was done, asking again later is safe.</summary>
public abstract class RetryLaterProblem(string title, string detail, int retryAfterSeconds)
    : ProblemResult(StatusCodes.Status503ServiceUnavailable, title, detail, null)
{
    public override Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return base.ExecuteAsync(httpContext);
    }
}

/// <summary>503 with <c>Retry-After: 1</c>: the pipeline cannot take the batch now; nothing of it was accepted.</summary>
public sealed class BusyProblem(string detail) : RetryLaterProblem("Busy", detail, 1), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status503ServiceUnavailable);
}

/// <summary>503 with <c>Retry-After: 5</c>: a dependency (the lake's storage) did not answer.</summary>
public sealed class UnavailableProblem(string detail) : RetryLaterProblem("Unavailable", detail, 5), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status503ServiceUnavailable);
}

public sealed class ConflictProblem(string detail) : ProblemResult(StatusCodes.Status409Conflict, "Conflict", detail, null), IEndpointMetadataProvider
{
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) => Describe(builder, StatusCodes.Status409Conflict);
}

/// <summary>Asks every partition's operator of one kind, in partition order.</summary>
internal static class PerPartition
{
    public static async Task<TStats[]> Ask<TStats>(IClusterClient cluster, Func<string, Task<TStats>> ask)
    {
        var info = await cluster.GetGrain<IPipelineInfoGrain>(0).GetInfo();
        return await Task.WhenAll(Enumerable.Range(0, info.Partitions).Select(p => ask(StreamNames.PartitionKey(p))));
    }
}
