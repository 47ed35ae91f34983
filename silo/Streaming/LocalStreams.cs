using System.Collections.Concurrent;
using Orleans.Configuration;
using Orleans.Providers.Streams.Common;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Silo.Streaming;

/// <summary>
/// A stream provider that hands batches on by reference inside a silo. Orleans' memory provider serialises every
/// message into bytes, copies them into a queue grain (a local call copies its argument), copies them again into its
/// pooled cache and deserialises them for each consumer: at saturation that was about 38 % of all bytes the silo
/// allocated. Here a message is the producer's own (immutable) <c>EventBatch</c> objects in an in-process queue,
/// read by this silo's pulling agent into Orleans' <see cref="SimpleQueueCache"/>, which keeps references.
/// </summary>
/// <remarks>
/// Every silo pulls every queue (<see cref="EveryQueueBalancer"/>), each from its own in-process copy: what a producer
/// publishes is delivered by the agent of the producer's silo, to consumer grains wherever they live (a consumer on
/// another silo gets the batch through one grain call, serialised once). Nothing is durable here, as with the memory
/// provider: what a silo holds when it dies is replayed from the fronting log by the routers.
/// </remarks>
public sealed class LocalQueueAdapterFactory : IQueueAdapterFactory, IQueueAdapter
{
    private readonly HashRingBasedStreamQueueMapper _mapper;
    private readonly SimpleQueueAdapterCache _cache;
    private readonly ConcurrentDictionary<QueueId, LocalQueue> _queues = new();
    private readonly int _capacity;
    private readonly byte[] _bounded;
    private readonly TimeSpan _gather;
    private readonly TimeSpan _idleWait;

    /// <param name="capacity">Undelivered messages a queue holds before a publish to the <paramref name="boundedNamespace"/>
    /// is refused.</param>
    /// <param name="boundedNamespace">The streams whose publishes the capacity bounds: the pipeline's source (the
    /// fronting stream). Publishes to any other stream come from consumers that are handling a delivery of their own,
    /// and are never refused: a consumer that had to retry would hold back the queue it consumes, and queues full of
    /// each other's work could then wait on each other for good. Bounding the source bounds what flows behind it.</param>
    /// <param name="idleWait">How long a receiver waits on an empty queue before it answers empty (default
    /// <see cref="LocalQueue.IdleWait"/>).</param>
    public LocalQueueAdapterFactory(string name, int queueCount, int capacity, int cacheSize, ILoggerFactory loggerFactory, TimeSpan gather = default, TimeSpan? idleWait = null,
        string boundedNamespace = Keystone.Topics.StreamNames.Fronting)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(gather, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(queueCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Name = name;
        _capacity = capacity;
        _bounded = System.Text.Encoding.UTF8.GetBytes(boundedNamespace);
        _gather = gather;
        _idleWait = idleWait ?? LocalQueue.IdleWait;
        _mapper = new HashRingBasedStreamQueueMapper(new HashRingStreamQueueMapperOptions { TotalQueueCount = queueCount }, name);
        _cache = new SimpleQueueAdapterCache(new SimpleQueueCacheOptions { CacheSize = cacheSize }, name, loggerFactory);
    }

    public string Name { get; }

    public bool IsRewindable => false;

    public StreamProviderDirection Direction => StreamProviderDirection.ReadWrite;

    /// <summary>Messages waiting in this silo's queues for their pulling agent (not yet in its cache).</summary>
    public long Waiting => _queues.Values.Sum(q => (long)q.Count);

    public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(this);

    public IQueueAdapterCache GetQueueAdapterCache() => _cache;

    public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) =>
        Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler(false));

    public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext)
    {
        if (token is not null)
            throw new ArgumentException("Local streams are not rewindable: a producer cannot set a sequence token.", nameof(token));
        var items = events switch
        {
            T[] array => Array.ConvertAll(array, e => (object)e!),
            _ => events.Select(e => (object)e!).ToArray(),
        };
        if (items.Length == 0) return Task.CompletedTask;
        var queue = Queue(_mapper.GetQueueForStream(streamId));
        // At the source, bounded like the memory provider's queue grain: ingest outrunning every consumer gets an error
        // (the producers retry) instead of filling the silo's memory. Behind it, never (see the constructor).
        var capacity = streamId.Namespace.Span.SequenceEqual(_bounded) ? _capacity : int.MaxValue;
        if (!queue.TryEnqueue(new LocalMessage(streamId, items, requestContext is { Count: > 0 } ? requestContext : null), capacity))
            throw new LocalQueueFullException(queue.Id, _capacity);
        return Task.CompletedTask;
    }

    public IQueueAdapterReceiver CreateReceiver(QueueId queueId) => new Receiver(Queue(queueId), _gather, _idleWait);

    private LocalQueue Queue(QueueId id) => _queues.GetOrAdd(id, static id => new LocalQueue(id));

    public static LocalQueueAdapterFactory Create(IServiceProvider services, string name, int queueCount, int capacity, int cacheSize, TimeSpan gather) =>
        new(name, queueCount, capacity, cacheSize, services.GetRequiredService<ILoggerFactory>(), gather);

    private sealed class Receiver(LocalQueue queue, TimeSpan gather, TimeSpan idleWait) : IQueueAdapterReceiver
    {
        // Enough for one pull to empty a busy queue; the agent asks for fewer when its cache is filling.
        private const int DefaultMaxCount = 1024;
        private long _sequence;

        public Task Initialize(TimeSpan timeout) => Task.CompletedTask;

        public Task Initialize(TimeSpan timeout, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount) => GetQueueMessagesAsync(maxCount, CancellationToken.None);

        // An empty queue is waited on, not polled: the agent's pump stays in this call until a message arrives (or
        // IdleWait passes), then gathers for a moment, so a message waits for no timer tick. Polled every
        // PollPeriod (10 ms), each hop added half a period on average, and an event takes two or three hops.
        public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount, CancellationToken cancellationToken) =>
            queue.IsEmpty ? WaitThenRead(maxCount, cancellationToken) : Task.FromResult(Read(maxCount));

        private async Task<IList<IBatchContainer>> WaitThenRead(int maxCount, CancellationToken cancellationToken)
        {
            await queue.WaitAsync(idleWait, cancellationToken);
            // A stopping agent cancels the pause: it then reads what is there, without an exception.
            if (gather > TimeSpan.Zero && !queue.IsEmpty)
                await Task.Delay(gather, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext | ConfigureAwaitOptions.SuppressThrowing);
            return Read(maxCount);
        }

        private IList<IBatchContainer> Read(int maxCount)
        {
            var limit = maxCount > 0 ? maxCount : DefaultMaxCount;
            var batch = new List<IBatchContainer>(Math.Min(limit, Math.Max(queue.Count, 1)));
            while (batch.Count < limit && queue.TryDequeue(out var message))
                batch.Add(new LocalBatchContainer(message.StreamId, message.Events, new EventSequenceTokenV2(++_sequence), message.RequestContext));
            return batch;
        }

        // Nothing to acknowledge: a message left the queue when it was read.
        public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => Task.CompletedTask;

        public Task MessagesDeliveredAsync(IList<IBatchContainer> messages, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task Shutdown(TimeSpan timeout) => Shutdown(timeout, CancellationToken.None);

        public Task Shutdown(TimeSpan timeout, CancellationToken cancellationToken)
        {
            queue.Wake();
            return Task.CompletedTask;
        }
    }
}

internal readonly record struct LocalMessage(StreamId StreamId, object[] Events, Dictionary<string, object>? RequestContext);

internal sealed class LocalQueue(QueueId id)
{
    /// <summary>
    /// The longest a receiver waits on an empty queue before its agent's pump returns: the pump's other chores (purging
    /// its cache of delivered messages, cleaning up idle streams) run between reads.
    /// </summary>
    public static readonly TimeSpan IdleWait = TimeSpan.FromSeconds(1);

    private readonly ConcurrentQueue<LocalMessage> _messages = new();
    private int _count;
    // The receiver waiting for this queue to become non-empty, if any (one receiver per queue and silo).
    private TaskCompletionSource? _waiter;

    public QueueId Id { get; } = id;

    public int Count => Volatile.Read(ref _count);

    public bool IsEmpty => _messages.IsEmpty;

    /// <summary>Completes when a message is enqueued, after <paramref name="atMost"/>, or on cancellation; never throws.</summary>
    public async Task WaitAsync(TimeSpan atMost, CancellationToken cancellationToken)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Both sides publish, then look (each with a full fence): either the enqueuer takes this waiter, or this sees
        // the message. An enqueuer that finds the waiter of an earlier wait completes that one, harmlessly.
        Interlocked.Exchange(ref _waiter, signal);
        if (!_messages.IsEmpty) return;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(atMost);
        using (timeout.Token.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), signal))
            await signal.Task;
    }

    /// <summary>Ends the current wait: a message arrived, or the receiver is shutting down.</summary>
    public void Wake() => Interlocked.Exchange(ref _waiter, null)?.TrySetResult();

    public bool TryEnqueue(LocalMessage message, int capacity)
    {
        if (Interlocked.Increment(ref _count) > capacity)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }
        _messages.Enqueue(message);
        Wake();
        return true;
    }

    public bool TryDequeue(out LocalMessage message)
    {
        if (!_messages.TryDequeue(out message)) return false;
        Interlocked.Decrement(ref _count);
        return true;
    }
}

/// <summary>A queue of this silo holds as many undelivered messages as it may: its consumers are not keeping up.</summary>
[GenerateSerializer]
public sealed class LocalQueueFullException : Keystone.Ingest.PipelineBusyException
{
    public LocalQueueFullException() { }

    public LocalQueueFullException(QueueId queue, int capacity)
        : base($"Local stream queue {queue} already holds {capacity} undelivered messages (Keystone:Streaming:LocalQueueCapacity): its consumers are not keeping up; the producer's delivery is retried.") { }
}

/// <summary>
/// The producer's items, by reference. Marked immutable so that a delivery inside the silo does not deep-copy it:
/// the items are <c>EventBatch</c> objects, themselves immutable. A delivery to another silo serialises it once.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class LocalBatchContainer(StreamId streamId, object[] events, EventSequenceTokenV2 token, Dictionary<string, object>? requestContext) : IBatchContainer
{
    [Id(0)] public StreamId StreamId { get; } = streamId;
    [Id(1)] public object[] Events { get; } = events;
    [Id(2)] public EventSequenceTokenV2 Token { get; } = token;
    [Id(3)] public Dictionary<string, object>? RequestContext { get; } = requestContext;

    public StreamSequenceToken SequenceToken => Token;

    public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>()
    {
        // One item per message is the common case (a producer publishes one batch at a time): no enumerator chain.
        if (Events.Length == 1)
            return Events[0] is T only ? [Tuple.Create(only, (StreamSequenceToken)Token)] : [];
        var result = new List<Tuple<T, StreamSequenceToken>>(Events.Length);
        for (var i = 0; i < Events.Length; i++)
            if (Events[i] is T item) result.Add(Tuple.Create(item, (StreamSequenceToken)Token.CreateSequenceTokenForEvent(i)));
        return result;
    }

    public bool ImportRequestContext()
    {
        if (RequestContext is null) return false;
        RequestContextExtensions.Import(RequestContext);
        return true;
    }
}

/// <summary>
/// Gives every silo every queue: each silo's queues are its own, in its memory, so each must be read where it was
/// written. (Orleans' balancers spread queues over silos, which suits queues that live in a shared service.)
/// </summary>
public sealed class EveryQueueBalancer : IStreamQueueBalancer
{
    private IReadOnlyList<QueueId> _queues = [];

    public Task Initialize(IStreamQueueMapper queueMapper)
    {
        _queues = [.. queueMapper.GetAllQueues()];
        return Task.CompletedTask;
    }

    public Task Shutdown() => Task.CompletedTask;

    public IEnumerable<QueueId> GetMyQueues() => _queues;

    // The set never changes, so there is nothing to tell a listener.
    public bool SubscribeToQueueDistributionChangeEvents(IStreamQueueBalanceListener queueBalanceListener) => true;

    public bool UnSubscribeFromQueueDistributionChangeEvents(IStreamQueueBalanceListener queueBalanceListener) => true;
}
