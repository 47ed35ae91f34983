using Keystone.Silo.Streaming;
using Microsoft.Extensions.Time.Testing;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.UnitTests.Silo;

public class IdlePollingTests
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(1);

    [Fact]
    public void Each_empty_read_doubles_the_wait_from_the_poll_period_up_to_the_maximum()
    {
        var polling = new IdlePolling(Period, Max);
        var now = 0L;
        var waits = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            Assert.True(polling.ShouldRead(now));
            polling.Read(now, messages: 0);
            waits.Add(polling.Wait.TotalMilliseconds);
            Assert.False(polling.ShouldRead(now + polling.Wait.Ticks - 1));
            now += polling.Wait.Ticks;
        }

        Assert.Equal([10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000], waits);
    }

    [Fact]
    public void A_read_that_finds_messages_ends_the_wait()
    {
        var polling = new IdlePolling(Period, Max);
        for (var i = 0; i < 8; i++) polling.Read(i * Max.Ticks, messages: 0);

        polling.Read(8 * Max.Ticks, messages: 3);

        Assert.Equal(TimeSpan.Zero, polling.Wait);
        Assert.True(polling.ShouldRead(8 * Max.Ticks));
        polling.Read(8 * Max.Ticks, messages: 0);
        Assert.Equal(Period, polling.Wait);
    }

    [Fact]
    public void A_wake_lets_the_next_read_through_at_once()
    {
        var polling = new IdlePolling(Period, Max);
        for (var i = 0; i < 8; i++) polling.Read(0, messages: 0);
        Assert.False(polling.ShouldRead(1));

        polling.Wake();

        Assert.True(polling.ShouldRead(1));
    }

    [Fact]
    public async Task Polls_of_an_idle_queue_are_answered_without_reading_it_until_the_wait_is_over_or_this_silo_enqueues()
    {
        var time = new FakeTimeProvider();
        var inner = new CountingQueues();
        var factory = new IdlePollingQueueAdapterFactory(inner, Period, Max, time);
        var adapter = await factory.CreateAdapter(CancellationToken.None);
        var stream = StreamId.Create("fronting", "0");
        var receiver = adapter.CreateReceiver(factory.GetStreamQueueMapper().GetQueueForStream(stream));

        // The pulling agent polls every 10 ms for ten idle seconds.
        for (var i = 0; i < 1_000; i++)
        {
            Assert.Empty(await receiver.GetQueueMessagesAsync(32, CancellationToken.None));
            time.Advance(Period);
        }
        // 10, 20, ... 640 ms, then once a second: 7 + about 9 reads instead of 1,000.
        Assert.InRange(inner.Reads, 15, 18);
        Assert.Equal(inner.Reads, factory.Reads);
        Assert.Equal(1_000 - inner.Reads, factory.Skipped);

        // This silo enqueues: the very next poll reads it.
        await adapter.QueueMessageBatchAsync(stream, [1], null, null);
        var reads = inner.Reads;
        Assert.Single(await receiver.GetQueueMessagesAsync(32, CancellationToken.None));
        Assert.Equal(reads + 1, inner.Reads);
        // And the poll after finds it empty again and reads at the poll period, not a second later.
        time.Advance(Period);
        Assert.Empty(await receiver.GetQueueMessagesAsync(32, CancellationToken.None));
        Assert.Equal(reads + 2, inner.Reads);
    }

    /// <summary>A polled queue provider that answers at once and counts its reads.</summary>
    private sealed class CountingQueues : IQueueAdapterFactory, IQueueAdapter
    {
        private readonly HashRingBasedStreamQueueMapper _mapper = new(new Orleans.Configuration.HashRingStreamQueueMapperOptions { TotalQueueCount = 2 }, "test");
        private readonly Queue<IBatchContainer> _messages = new();
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public string Name => "test";

        public bool IsRewindable => false;

        public StreamProviderDirection Direction => StreamProviderDirection.ReadWrite;

        public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(this);

        public IQueueAdapterCache GetQueueAdapterCache() => throw new NotSupportedException("not used by the wrapper");

        public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

        public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) => throw new NotSupportedException("not used by the wrapper");

        public Task QueueMessageBatchAsync<T>(StreamId streamId, IEnumerable<T> events, StreamSequenceToken? token, Dictionary<string, object>? requestContext)
        {
            lock (_messages) _messages.Enqueue(new Message(streamId));
            return Task.CompletedTask;
        }

        public IQueueAdapterReceiver CreateReceiver(QueueId queueId) => new Receiver(this);

        private sealed class Receiver(CountingQueues queues) : IQueueAdapterReceiver
        {
            public Task Initialize(TimeSpan timeout) => Task.CompletedTask;

            public Task<IList<IBatchContainer>> GetQueueMessagesAsync(int maxCount)
            {
                Interlocked.Increment(ref queues._reads);
                lock (queues._messages)
                {
                    IList<IBatchContainer> found = [.. queues._messages];
                    queues._messages.Clear();
                    return Task.FromResult(found);
                }
            }

            public Task MessagesDeliveredAsync(IList<IBatchContainer> messages) => Task.CompletedTask;

            public Task Shutdown(TimeSpan timeout) => Task.CompletedTask;
        }

        private sealed class Message(StreamId streamId) : IBatchContainer
        {
            public StreamId StreamId => streamId;

            public StreamSequenceToken SequenceToken => null!;

            public IEnumerable<Tuple<T, StreamSequenceToken>> GetEvents<T>() => [];

            public bool ImportRequestContext() => false;
        }
    }
}
