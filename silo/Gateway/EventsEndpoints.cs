using System.IO.Compression;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Silo.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;

namespace Keystone.Silo.Gateway;

/// <summary>The ingest response body: how many were accepted, how many repeats were dropped, and each rejection.</summary>
public sealed record IngestResponse(int Accepted, int Duplicates, IReadOnlyList<EventRejection> Rejected);

/// <summary>
/// <c>POST /v1/events</c>: a JSON array, a single event object, or NDJSON, optionally gzip-encoded. The gateway only
/// reads the body (within limits) and hands the bytes to the same ingest grain the SDK uses.
/// </summary>
internal static class EventsEndpoints
{
    private static readonly string[] JsonTypes = ["application/json", "text/json"];
    private static readonly string[] NdjsonTypes = ["application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"];

    public static void MapEvents(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1").RequireAuthorization(ScopePolicies.Ingest)
            .MapPost("/events", Ingest)
            .WithName("PublishEvents")
            .WithTags("Events")
            .WithSummary("Publish a batch of events")
            .WithDescription("Body: a JSON array of events, one event object, or NDJSON (Content-Type application/x-ndjson). " +
                             "Content-Encoding: gzip is accepted. Answers 202 with the accepted count and a rejection per refused event; " +
                             "400 when the body is not usable as a whole, 413 when it is too large, 415 for other content types.")
            // Not .Accepts(): its content-type matcher would answer other types with a bare 415; this handler says why.
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Description = "Events in the seed envelope (event_id, event_type, timestamp, version, source, payload, metadata).",
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Array | JsonSchemaType.Object } },
                        ["application/x-ndjson"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } },
                    },
                };
                return Task.CompletedTask;
            })
            .DisableAntiforgery();
    }

    internal static async Task<Results<Accepted<IngestResponse>, BadRequestProblem, TooLargeProblem, UnsupportedMediaTypeProblem, BusyProblem, UnavailableProblem>> Ingest(HttpContext http, IClusterClient cluster, IOptions<IngestOptions> options, CancellationToken cancellationToken)
    {
        var limit = options.Value.MaxRequestBytes;
        if (!TryFormat(http.Request.ContentType, out var format))
            return Problems.UnsupportedMediaType($"Content-Type '{http.Request.ContentType}' is not supported; send application/json (an array or one event) or application/x-ndjson (one event per line).");

        var encoding = http.Request.Headers.ContentEncoding.ToString().Trim().ToLowerInvariant();
        if (encoding is not ("" or "identity" or "gzip"))
            return Problems.UnsupportedMediaType($"Content-Encoding '{encoding}' is not supported; send the body as is or gzip-encoded.");

        if (http.Request.ContentLength > limit)
            return Problems.TooLarge($"the body is {http.Request.ContentLength} bytes; the limit is {limit} bytes");

        byte[] body;
        try
        {
            var source = encoding == "gzip" ? new GZipStream(http.Request.Body, CompressionMode.Decompress, leaveOpen: true) : http.Request.Body;
            await using (source)
            {
                body = await ReadLimited(source, limit, cancellationToken);
            }
        }
        catch (BodyTooLargeException)
        {
            return Problems.TooLarge(encoding == "gzip"
                ? $"the body expands to more than {limit} bytes when decompressed; the limit is {limit} bytes"
                : $"the body is larger than the limit of {limit} bytes");
        }
        catch (InvalidDataException e)
        {
            return Problems.BadRequest($"the body is not valid gzip: {e.Message}");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Problems.TooLarge($"the body is larger than the server's limit: {e.Message}");
        }

        if (body.Length == 0)
            return Problems.BadRequest("the body is empty; send a JSON array of events, a single event object, or NDJSON (one event per line)");

        IngestResult result;
        try
        {
            result = await cluster.GetGrain<IIngestGrain>(0).Ingest(new IngestRequest(body, format, BodyCompression.None, "rest"));
        }
        catch (PipelineBusyException e)
        {
            return Problems.Busy(e.Message);
        }
        catch (FrontingLogUnavailableException e)
        {
            return new UnavailableProblem(e.Message);
        }
        if (result.BodyError is not null)
            return Problems.BadRequest(result.BodyError);
        return TypedResults.Accepted((string?)null, new IngestResponse(result.Accepted, result.Duplicates, result.Rejected));
    }

    private static bool TryFormat(string? contentType, out BodyFormat format)
    {
        format = BodyFormat.Auto;
        if (string.IsNullOrWhiteSpace(contentType)) return true;
        if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed)) return false;
        var media = parsed.MediaType.Value?.ToLowerInvariant() ?? "";
        if (JsonTypes.Contains(media)) return true;
        if (NdjsonTypes.Contains(media))
        {
            format = BodyFormat.Ndjson;
            return true;
        }
        return false;
    }

    private sealed class BodyTooLargeException : Exception;

    private static async Task<byte[]> ReadLimited(Stream source, int limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (true)
        {
            var read = await source.ReadAsync(chunk, cancellationToken);
            if (read == 0) break;
            if (buffer.Length + read > limit) throw new BodyTooLargeException();
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}
