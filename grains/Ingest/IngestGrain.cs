using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Pipeline;
using Keystone.Schemas;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Streams;
using Keystone.Operations;

namespace Keystone.Ingest;

/// <summary>
/// Validates a batch, drops repeats within it, splits it by partition and appends one stream message per
/// partition (more if a partition's share exceeds the message limits). Returns only after every append was
/// accepted by the stream provider, so an acknowledged event is in the fronting log.
/// </summary>
[StatelessWorker]
public sealed class IngestGrain(
    IOptions<IngestOptions> options,
    SchemaRegistryProvider schemas,
    PipelineMetrics metrics,
    DeadLetterStore deadLetters,
    IOptions<DeadLetterOptions> deadLetterOptions,
    IOptions<CheckpointOptions> checkpoints,
    TimeProvider time,
    ILogger<IngestGrain> logger) : Grain, IIngestGrain
{
    private readonly IngestOptions _options = options.Value;
    private IAsyncStream<EventBatch>[]? _partitions;
    private readonly HashSet<Guid> _seen = [];

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var provider = this.GetStreamProvider(StreamNames.Provider);
        _partitions = Enumerable.Range(0, _options.Partitions)
            .Select(p => provider.GetStream<EventBatch>(StreamId.Create(StreamNames.Fronting, StreamNames.PartitionKey(p))))
            .ToArray();
        return Task.CompletedTask;
    }

    public async Task<IngestResult> Ingest(IngestRequest request)
    {
        var now = time.GetUtcNow();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var (parsed, error, refused) = Read(request, now);
        if (error is not null)
        {
            metrics.BadBody();
            return IngestResult.Malformed(error);
        }
        if (parsed.Rejections.Count > 0 && logger.IsEnabled(LogLevel.Debug))
            logger.LogDebug("Rejected {Count} of {Total} events from {Origin}; first: {First}", parsed.Rejections.Count, parsed.Total, request.Origin, parsed.Rejections[0].Error);

        // Beside the append, not before it: the valid events do not wait for the refused ones to be kept.
        var keeping = refused is null ? Task.CompletedTask : KeepRejected(refused, now);

        int accepted, duplicates, messages;
        try
        {
            (accepted, duplicates, messages) = await Append(parsed, now);
        }
        catch (Exception e)
        {
            metrics.Received(0, 0, parsed.Rejections);
            await keeping;
            // The shared type, whatever the provider threw: a client knows it (and retries), not the provider's own.
            if (e is PipelineBusyException) throw new PipelineBusyException($"the pipeline is busy, send the batch again later: {e.Message}");
            throw;
        }
        // One record for the whole request, so an alert evaluated meanwhile never sees half of it; made once the events
        // are appended (and on their way), not once the refused ones are kept, which may take up to KeepTimeout.
        metrics.Received(accepted, messages, parsed.Rejections);
        metrics.DuplicateInBatch(duplicates);
        metrics.StageBatch("ingest", System.Diagnostics.Stopwatch.GetElapsedTime(started), parsed.Events, now);
        await keeping;
        return new IngestResult(accepted, duplicates, parsed.Rejections);
    }

    /// <summary>
    /// Decompresses, decodes and validates the body, and picks out the text of what was refused, without an await: the
    /// decompressed body is a pooled array that goes back before this returns. Nothing downstream refers to it (the
    /// decoded events own their bytes, and the fronting log encodes them again), so one array serves request after
    /// request, where a fresh one of hundreds of kilobytes per request was the largest allocation on the event path.
    /// </summary>
    private (ParsedBatch Parsed, string? Error, List<(EventRejection Rejection, string Text)>? Refused) Read(IngestRequest request, DateTimeOffset now)
    {
        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> body;
            if (request.Compression == BodyCompression.Lz4)
            {
                try
                {
                    rented = Lz4Codec.DecompressRented(request.Body.Span, _options.MaxRequestBytes, out var length);
                    body = rented.AsSpan(0, length);
                }
                catch (InvalidDataException e)
                {
                    return (default!, $"compressed batch: {e.Message}", null);
                }
            }
            else
            {
                body = request.Body.Span;
            }
            if (body.Length > _options.MaxRequestBytes)
                return (default!, $"the batch is {body.Length} bytes; the limit is {_options.MaxRequestBytes} bytes", null);

            var limits = new ValidationLimits
            {
                MaxEventBytes = _options.MaxEventBytes,
                MaxFutureSkew = _options.MaxFutureSkew,
                AllowLakeReplayMarker = request.Origin == IngestOrigins.ArchiveReplay,
            };
            ParsedBatch parsed;
            KeystoneEvent[]? decoded = null;
            if (request.Format == BodyFormat.Binary)
            {
                // The SDK's binary batch: decoded once, then validated event by event.
                try
                {
                    decoded = EventBatchCodec.Decode(body);
                    parsed = EventBatchParser.ValidateDecoded(decoded, schemas.Current, limits, now);
                }
                catch (Exception e) when (e is InvalidDataException or ArgumentException or OverflowException or IndexOutOfRangeException)
                {
                    return (default!, $"malformed binary batch: {e.Message}", null);
                }
            }
            else
            {
                parsed = EventBatchParser.Parse(body, request.Format, schemas.Current, limits, now);
            }
            if (parsed.BodyError is not null) return (parsed, parsed.BodyError, null);
            if (parsed.Total > _options.MaxEventsPerRequest)
                return (parsed, $"the batch holds {parsed.Total} events; the limit is {_options.MaxEventsPerRequest}", null);

            // Refused events are kept with their text, so they can be looked at and replayed once the cause (often a
            // schema) is fixed; the text comes from the body, so it is picked out here.
            if (parsed.Rejections.Count == 0 || request.Origin == IngestOrigins.Replay) return (parsed, null, null);
            var kept = parsed.Rejections.Take(deadLetterOptions.Value.MaxPerRequest).ToList();
            var raw = RejectedEvents.Extract(body, request.Format, [.. kept.Select(r => r.Index)], decoded);
            return (parsed, null, [.. kept.Select(r => (r, raw.GetValueOrDefault(r.Index) ?? ""))]);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task<(int Accepted, int Duplicates, int Messages)> Append(ParsedBatch parsed, DateTimeOffset now)
    {
        var partitionCount = _options.Partitions;
        // One set per activation, cleared per request: a stateless worker takes one request at a time, and the set is
        // used only before the first await.
        var seen = _seen;
        seen.Clear();
        seen.EnsureCapacity(parsed.Events.Count);
        var duplicates = 0;
        // Partitions first, then one array of the right size per partition: lists grown by doubling allocated about
        // twice each share, and the chunker then copied a list that fit in one message into an array of its own.
        var partitionOf = new int[parsed.Events.Count];
        var counts = new int[partitionCount];
        for (var i = 0; i < parsed.Events.Count; i++)
        {
            var e = parsed.Events[i];
            if (!seen.Add(e.EventId))
            {
                duplicates++;
                partitionOf[i] = -1;
                continue;
            }
            counts[partitionOf[i] = Partitioning.PartitionOf(e, partitionCount)]++;
        }
        var byPartition = new BatchItem[]?[partitionCount];
        var filled = new int[partitionCount];
        for (var i = 0; i < parsed.Events.Count; i++)
        {
            var p = partitionOf[i];
            if (p < 0) continue;
            var e = parsed.Events[i];
            (byPartition[p] ??= new BatchItem[counts[p]])[filled[p]++] = new BatchItem(e);
        }

        var appends = new List<Task>();
        var messages = 0;
        var logging = checkpoints.Value.Logging;
        for (var p = 0; p < partitionCount; p++)
        {
            if (byPartition[p] is not { } list) continue;
            var share = StreamChunker.Chunk(list, _options.MaxEventsPerStreamMessage, _options.MaxBytesPerStreamMessage)
                .Select(chunk => EventBatch.ComposeOwned(Guid.NewGuid(), p, now, chunk)).ToArray();
            messages += share.Length;
            // With the fronting log, the partition's writer makes the share durable (group-committed with other
            // requests) before it is streamed: the acknowledgement then means durable.
            if (logging) appends.Add(GrainFactory.GetGrain<IFrontingPartitionGrain>(p).Append(share));
            else appends.AddRange(share.Select(m => _partitions![p].OnNextAsync(m)));
        }
        try
        {
            await Task.WhenAll(appends);
        }
        catch (Exception e) when (logging && e is not PipelineBusyException)
        {
            // Whatever the storage client threw, and however it crossed the grain call: the caller needs to know that
            // nothing was acknowledged and that sending it again is safe, not the storage's own exception type.
            logger.LogWarning("The fronting log did not make {Count} events durable: {Error}", parsed.Events.Count - duplicates, e.Message);
            throw new FrontingLogUnavailableException($"the fronting log did not make the events durable ({e.GetType().Name}: {e.Message}); " +
                "nothing was acknowledged, send them again (events are de-duplicated by event_id)");
        }
        return (parsed.Events.Count - duplicates, duplicates, messages);
    }

    // Storage trouble must not refuse the valid events of the same request, nor hold its answer past the keep timeout:
    // the producer has each refusal and its reason in the answer either way.
    private async Task KeepRejected(List<(EventRejection Rejection, string Text)> refused, DateTimeOffset now)
    {
        using var timeout = new CancellationTokenSource(deadLetterOptions.Value.KeepTimeout, time);
        try
        {
            var letters = refused.Select(r => new DeadLetter(DeadLetterStore.NewId("ingest", now), "ingest", EventTypeOf(r.Text), r.Rejection.EventId,
                r.Rejection.Error, 1, now, r.Text, null)).ToList();
            await deadLetters.AddAsync(letters, timeout.Token);
        }
        catch (Exception e) when (e is Azure.RequestFailedException or IOException or OperationCanceledException)
        {
            metrics.DeadLettersNotKept(refused.Count);
            logger.LogWarning(e, "Could not keep {Count} refused events in the dead-letter store within {Timeout}", refused.Count, deadLetterOptions.Value.KeepTimeout);
        }
    }

    private static string? EventTypeOf(string json)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("event_type", out var t)
                && t.ValueKind == System.Text.Json.JsonValueKind.String ? t.GetString() : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
