using System.Collections.Concurrent;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Silo.Streaming;

/// <summary>
/// Wraps a polled queue provider (Azure Queue streams) so that an empty queue is read less and less often, up to
/// <c>maxWait</c> apart (<see cref="IdlePolling"/>), instead of every poll period. A queue with messages is read as
/// before, and a message this silo enqueues wakes its queue at once; a message enqueued by another silo is seen at
/// the queue's next read, at most <c>maxWait</c> later.
/// </summary>
public sealed class IdlePollingQueueAdapterFactory(IQueueAdapterFactory inner, TimeSpan pollPeriod, TimeSpan maxWait, TimeProvider time) : IQueueAdapterFactory
{
    private readonly ConcurrentDictionary<QueueId, IdlePolling> _queues = new();

    /// <summary>Reads that went to a queue, and reads answered empty without asking it.</summary>
    public long Reads => Interlocked.Read(ref _reads);

    public long Skipped => Interlocked.Read(ref _skipped);

    private long _reads;
    private long _skipped;

    internal IdlePolling Polling(QueueId queue) => _queues.GetOrAdd(queue, _ => new IdlePolling(pollPeriod, maxWait));

    public Task<IQueueAdapter> CreateAdapter() => CreateAdapter(CancellationToken.None);

    public async Task<IQueueAdapter> CreateAdapter(CancellationToken cancellationToken) => new Adapter(this, await inner.CreateAdapter(cancellationToken));

    public IQueueAdapterCache GetQueueAdapterCache() => inner.GetQueueAdapterCache();

    public IStreamQueueMapper GetStreamQueueMapper() => inner.GetStreamQueueMapper();

    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => inner.GetDeliveryFailureHandler(queueId);

    private sealed class Adapter(IdlePollingQueueAdapterFactory factory, IQueueAdapter inner) : IQueueAdapter
    {
        private readonly IStreamQueueMapper _mapper = factory.GetStreamQueueMapper();

        public string Name => inner.Name;

        public bool IsRewindable => inner.IsRewindable;

        public StreamProviderDirection Direction => inner.Direction;

        public async Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext)
        {
            await inner.QueueMessageBatchAsync(streamId, events, token, requestContext);
            // After the enqueue: a read woken before it could find the queue still empty and back off again.
            factory.Polling(_mapper.GetQueueForStream(streamId)).Wake();
        }

        public IQueueAdapterReceiver CreateReceiver(QueueId queueId) => new Receiver(factory, factory.Polling(queueId), inner.CreateReceiver(queueId));
    }

    private sealed class Receiver(IdlePollingQueueAdapterFactory factory, IdlePolling polling, IQueueAdapterReceiver inner) : IQueueAdapterReceiver
    {
        private static readonly IList<IBatchContainer> Empty = Array.Empty<IBatchContainer>();

        public Task Initialize(TimeSpan timeout) => Initialize(timeout, CancellationToken.None);

        public Task Initialize(TimeSpan timeout, CancellationToken cancellationToken) => inner.Initialize(timeout, cancellationToken);

        public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount) => GetQueueMessagesAsync(maxCount, CancellationToken.None);

        public async Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount, CancellationToken cancellationToken)
        {
            if (!polling.ShouldRead(factory.Now))
            {
                Interlocked.Increment(ref factory._skipped);
                return Empty;
            }
            Interlocked.Increment(ref factory._reads);
            var messages = await inner.GetQueueMessagesAsync(maxCount, cancellationToken);
            polling.Read(factory.Now, messages?.Count ?? 0);
            return messages ?? Empty;
        }

        public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => MessagesDeliveredAsync(messages, CancellationToken.None);

        public Task MessagesDeliveredAsync(IList<IBatchContainer> messages, CancellationToken cancellationToken) => inner.MessagesDeliveredAsync(messages, cancellationToken);

        public Task Shutdown(TimeSpan timeout) => Shutdown(timeout, CancellationToken.None);

        public Task Shutdown(TimeSpan timeout, CancellationToken cancellationToken) => inner.Shutdown(timeout, cancellationToken);
    }

    private long Now => time.GetUtcNow().UtcTicks;
}
