using System.Threading.Channels;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keystone.Client.Publishing;

public enum PublishStatus
{
    /// <summary>Validated and queued; it will be sent (or, after the last retry, dead-lettered).</summary>
    Queued,

    /// <summary>Refused by schema validation; counted, logged, not sent.</summary>
    Rejected,

    /// <summary>The queue was full (<see cref="KeystonePublisher.TryPublish"/> only).</summary>
    QueueFull,
}

public readonly record struct PublishResult(PublishStatus Status, ValidationError? Error = null)
{
    public bool IsQueued => Status == PublishStatus.Queued;
    public override string ToString() => Error is null ? Status.ToString() : $"{Status}: {Error.Message}";
}

/// <summary>The publisher's queue stayed full for longer than its backpressure policy allows.</summary>
public sealed class PublisherOverloadedException(string message) : Exception(message);

/// <summary>
/// The producer SDK (docs/api.md, Publisher SDK). <see cref="PublishAsync"/> validates the event against the registered
/// schemas on the caller's thread (CPU only, no I/O), serializes it, and queues it; a background loop batches the
/// queue (by count, bytes, linger, or an explicit <see cref="FlushAsync"/>), compresses each batch with LZ4, and
/// sends it to the cluster's ingest grain. Transient failures are retried with exponential backoff and jitter;
/// after the last retry the batch is appended to a local dead-letter file, never dropped.
/// </summary>
public sealed class KeystonePublisher : IAsyncDisposable
{
    private readonly IIngestTransport _transport;
    private readonly PublisherOptions _options;
    private readonly SchemaRegistry _schemas;
    private readonly ValidationLimits _limits;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<Item> _queue;
    private readonly Backoff _backoff;
    private readonly DeadLetterFile _deadLetters;
    private readonly SemaphoreSlim _slots;
    private readonly HashSet<Task> _inFlight = [];
    private readonly Lock _inFlightLock = new();
    private readonly Task _loop;
    private int _depth;

    public KeystonePublisher(IIngestTransport transport, PublisherOptions? options = null, SchemaRegistry? schemas = null, ILogger<KeystonePublisher>? logger = null, TimeProvider? time = null)
    {
        _transport = transport;
        _options = options ?? new PublisherOptions();
        _options.Validate();
        _schemas = schemas ?? SchemaRegistry.Embedded;
        _limits = new ValidationLimits { MaxEventBytes = _options.MaxEventBytes };
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        _queue = Channel.CreateBounded<Item>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
        });
        _backoff = Backoff.From(_options);
        _deadLetters = new DeadLetterFile(_options.DeadLetterPath);
        _slots = new SemaphoreSlim(_options.MaxInFlightBatches);
        Metrics = new PublisherMetrics(() => Volatile.Read(ref _depth));
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Where request bodies are rented from; a test replaces it to see what is given back.</summary>
    internal System.Buffers.ArrayPool<byte> BodyPool { get; init; } = System.Buffers.ArrayPool<byte>.Shared;

    /// <summary>A publisher that sends through Orleans (an <c>IClusterClient</c>, or a silo's own grain factory).</summary>
    public static KeystonePublisher Create(IGrainFactory grains, PublisherOptions? options = null, SchemaRegistry? schemas = null, ILogger<KeystonePublisher>? logger = null) =>
        new(new OrleansIngestTransport(grains), options, schemas, logger);

    public PublisherMetrics Metrics { get; }

    public string DeadLetterPath => _deadLetters.Path;

    /// <summary>Raised (on the send loop) when the cluster refuses events that passed local validation.</summary>
    public event Action<IReadOnlyList<EventRejection>>? ServerRejected;

    /// <summary>Validates and queues without waiting: a full queue answers <see cref="PublishStatus.QueueFull"/>.</summary>
    public PublishResult TryPublish(KeystoneEvent e)
    {
        if (!Prepare(e, out var item, out var rejected)) return rejected;
        if (!_queue.Writer.TryWrite(item)) return new PublishResult(PublishStatus.QueueFull);
        Interlocked.Increment(ref _depth);
        return new PublishResult(PublishStatus.Queued);
    }

    /// <summary>
    /// Validates and queues. When the queue is full, the configured backpressure applies: wait (asynchronously,
    /// never blocking the thread) up to <see cref="PublisherOptions.MaxBlockTime"/>, or fail at once; either way a
    /// producer that cannot be served gets a <see cref="PublisherOverloadedException"/>.
    /// </summary>
    public async ValueTask<PublishResult> PublishAsync(KeystoneEvent e, CancellationToken cancellationToken = default)
    {
        if (!Prepare(e, out var item, out var rejected)) return rejected;
        if (_queue.Writer.TryWrite(item))
        {
            Interlocked.Increment(ref _depth);
            return new PublishResult(PublishStatus.Queued);
        }
        if (_options.Backpressure == BackpressureMode.Fail || _options.MaxBlockTime == TimeSpan.Zero)
            throw Overloaded(TimeSpan.Zero);

        using var timeout = new CancellationTokenSource(_options.MaxBlockTime, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            await _queue.Writer.WriteAsync(item, linked.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw Overloaded(_options.MaxBlockTime);
        }
        Interlocked.Increment(ref _depth);
        return new PublishResult(PublishStatus.Queued);
    }

    /// <summary>Sends everything queued before this call; completes when those events are acknowledged or dead-lettered.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _queue.Writer.WriteAsync(new Item(null, 0, done), cancellationToken);
        await done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Stops accepting events, sends what is queued (retrying, then dead-lettering), and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop;
        Metrics.Dispose();
        _slots.Dispose();
    }

    private PublisherOverloadedException Overloaded(TimeSpan waited) =>
        new($"The publisher queue is full ({_options.QueueCapacity} events waiting)" +
            (waited > TimeSpan.Zero ? $" and no room freed within {waited.TotalMilliseconds:0} ms" : "") +
            "; the cluster is not keeping up or is unreachable. Slow down, raise QueueCapacity, or allow a longer MaxBlockTime.");

    private bool Prepare(KeystoneEvent e, out Item item, out PublishResult rejected)
    {
        ArgumentNullException.ThrowIfNull(e);
        var size = EventJson.SizeOf(e);
        var error = _schemas.Validate(e, _limits, size, _time.GetUtcNow());
        if (error is not null)
        {
            Metrics.Rejected(1);
            _logger.LogWarning("Event {EventId} ({EventType}) rejected before sending: {Error}", e.EventId, e.EventType, error.Message);
            item = default;
            rejected = new PublishResult(PublishStatus.Rejected, error);
            return false;
        }
        item = new Item(e, size, null);
        rejected = default;
        return true;
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var buffer = new BatchBuffer(_options.MaxBatchEvents, _options.MaxBatchBytes, _options.Linger);
        while (true)
        {
            if (!reader.TryRead(out var item))
            {
                if (buffer.DueAt is not { } due)
                {
                    if (!await reader.WaitToReadAsync()) break;
                    continue;
                }
                var wait = due - _time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    using var lingerTimeout = new CancellationTokenSource(wait, _time);
                    try
                    {
                        if (!await reader.WaitToReadAsync(lingerTimeout.Token)) break;
                        continue;
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
                await Dispatch(buffer.Drain());
                continue;
            }

            if (item.Marker is { } marker)
            {
                if (buffer.Count > 0) await Dispatch(buffer.Drain());
                await WaitForInFlight();
                marker.TrySetResult();
                continue;
            }

            Interlocked.Decrement(ref _depth);
            if (buffer.WouldOverflow(item.Size)) await Dispatch(buffer.Drain());
            buffer.Add(item.Event!, item.Size, _time.GetUtcNow());
            if (buffer.Check(_time.GetUtcNow()) is FlushReason.Count or FlushReason.Bytes) await Dispatch(buffer.Drain());
        }
        if (buffer.Count > 0) await Dispatch(buffer.Drain());
        await WaitForInFlight();
    }

    private async Task Dispatch(PendingBatch batch)
    {
        await _slots.WaitAsync();
        var task = SendWithRetries(batch);
        lock (_inFlightLock) _inFlight.Add(task);
        _ = task.ContinueWith(t =>
        {
            lock (_inFlightLock) _inFlight.Remove(t);
            _slots.Release();
        }, TaskScheduler.Default);
    }

    private Task WaitForInFlight()
    {
        Task[] pending;
        lock (_inFlightLock) pending = [.. _inFlight];
        return Task.WhenAll(pending);
    }

    // Both forms live in pooled buffers: the uncompressed one only feeds the compressor, and the compressed one is
    // given back once the cluster has answered (see SendWithRetries).
    private RentedBuffer Encode(IReadOnlyList<KeystoneEvent> events)
    {
        var size = EventBatchCodec.EncodedSize(events);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var written = EventBatchCodec.Encode(events, buffer);
            var body = new RentedBuffer(Lz4Codec.MaxCompressedLength(written), BodyPool);
            Lz4Codec.Compress(buffer.AsSpan(0, written), body);
            return body;
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); }
    }

    private async Task SendWithRetries(PendingBatch batch)
    {
        // Typed events travel in the binary batch form, LZ4-compressed: the cluster validates them again but has no JSON to parse.
        var body = Encode(batch.Events);
        var request = new IngestRequest(body.Written, BodyFormat.Binary, BodyCompression.Lz4, _options.Origin);
        // The body goes back to the pool only after an answer to the first attempt: an attempt that failed or timed out
        // may still be read by the cluster (a grain call goes on after its caller stopped waiting), and a retry reuses
        // the same bytes.
        if (await Send(batch, request)) body.Return();
    }

    /// <summary>Sends with retries, dead-lettering what cannot be sent; true when the first attempt was answered.</summary>
    private async Task<bool> Send(PendingBatch batch, IngestRequest request)
    {
        for (var attempt = 1; ; attempt++)
        {
            Exception failure;
            try
            {
                using var timeout = new CancellationTokenSource(_options.SendTimeout, _time);
                var result = await _transport.SendAsync(request, timeout.Token);
                if (result.BodyError is not null)
                {
                    // The cluster refused the batch as a whole; retrying the same bytes cannot help.
                    await DeadLetter(batch, $"cluster refused the batch: {result.BodyError}", attempt);
                    return attempt == 1;
                }
                Metrics.Published(result.Accepted + result.Duplicates);
                if (result.Rejected.Count > 0)
                {
                    Metrics.Rejected(result.Rejected.Count);
                    _logger.LogWarning("The cluster rejected {Count} of {Total} events; first: {Error}", result.Rejected.Count, batch.Count, result.Rejected[0].Error);
                    ServerRejected?.Invoke(result.Rejected);
                }
                Metrics.BatchSent(batch.Count, _time.GetUtcNow() - batch.OpenedAt);
                return attempt == 1;
            }
            catch (Exception e)
            {
                failure = e;
            }

            var reason = failure is OperationCanceledException ? $"send timed out after {_options.SendTimeout.TotalSeconds:0.#} s" : $"{failure.GetType().Name}: {failure.Message}";
            if (!IsTransient(failure) || attempt > _options.MaxRetries)
            {
                _logger.LogError(failure, "Batch of {Count} events failed after {Attempts} attempt(s); writing it to {Path}", batch.Count, attempt, _deadLetters.Path);
                await DeadLetter(batch, reason, attempt);
                return false;
            }
            Metrics.Retried();
            var delay = _backoff.Delay(attempt);
            _logger.LogWarning("Sending a batch of {Count} events failed ({Reason}); retry {Attempt} of {Max} in {Delay} ms", batch.Count, reason, attempt, _options.MaxRetries, (int)delay.TotalMilliseconds);
            await Task.Delay(delay, _time);
        }
    }

    private async Task DeadLetter(PendingBatch batch, string reason, int attempts)
    {
        try
        {
            await _deadLetters.AppendAsync(batch, reason, attempts, _time.GetUtcNow());
            Metrics.DeadLettered(batch.Count);
        }
        catch (Exception e)
        {
            // Nowhere left to put them: say so loudly with the ids, so an operator can find the events at the source.
            _logger.LogCritical(e, "Could not write {Count} events to the dead-letter file {Path}; event ids: {Ids}", batch.Count, _deadLetters.Path, string.Join(",", batch.EventIds));
            throw;
        }
    }

    /// <summary>Failures worth another try: the cluster or network being away, not a bug in the request.</summary>
    internal static bool IsTransient(Exception e) => e switch
    {
        ArgumentException or FormatException or NotSupportedException or InvalidCastException => false,
        Orleans.Serialization.CodecNotFoundException => false,
        _ => true,
    };

    private readonly record struct Item(KeystoneEvent? Event, int Size, TaskCompletionSource? Marker);
}
