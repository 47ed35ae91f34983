using Keystone.Ingest;
using Keystone.Silo.Streaming;
using Keystone.Topics;
using Keystone.UnitTests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Providers.Streams.Common;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Streams;

namespace Keystone.UnitTests.Silo;

public class LocalStreamsTests
{
    private static LocalQueueAdapterFactory Factory(int queues = 4, int capacity = 100) =>
        new("keystone", queues, capacity, cacheSize: 256, NullLoggerFactory.Instance);

    private static EventBatch Batch(int partition = 1) => new(Guid.NewGuid(), partition, Sample.Now, [Sample.PlayStarted(userId: $"user-{partition}")]);

    // What is in the queue now: a cancelled token ends the receiver's wait for a message at once.
    private static async Task<IList<IBatchContainer>> Pull(LocalQueueAdapterFactory factory, StreamId stream, int max = 0) =>
        await Receiver(factory, stream).GetQueueMessagesAsync(max, new CancellationToken(canceled: true));

    private static IQueueAdapterReceiver Receiver(LocalQueueAdapterFactory factory, StreamId stream) =>
        factory.CreateReceiver(factory.GetStreamQueueMapper().GetQueueForStream(stream));

    [Fact]
    public async Task A_receiver_of_an_empty_queue_waits_for_the_next_message_instead_of_answering_empty()
    {
        var factory = Factory();
        var adapter = await factory.CreateAdapter();
        var stream = StreamId.Create("ads-campaign", "4");
        var receiver = Receiver(factory, stream);

        // The agent's pump asks once; the answer is the message published while it waited, not an empty poll.
        var pull = receiver.GetQueueMessagesAsync(0, CancellationToken.None);
        var batch = Batch(4);
        await adapter.QueueMessageBatchAsync(stream, [batch], null, null);
        Assert.Same(batch, Assert.Single(Assert.Single(await pull).GetEvents<EventBatch>()).Item1);
    }

    [Fact]
    public async Task A_waiting_receiver_answers_empty_without_throwing_when_the_agent_stops()
    {
        // Waits that would last ten minutes: only the stop can end them within the test.
        var factory = new LocalQueueAdapterFactory("keystone", 4, 100, cacheSize: 256, NullLoggerFactory.Instance, idleWait: TimeSpan.FromMinutes(10));
        var stream = StreamId.Create("graph-updates", "5");
        var receiver = Receiver(factory, stream);
        using var stopping = new CancellationTokenSource();
        var pull = receiver.GetQueueMessagesAsync(0, stopping.Token);
        await stopping.CancelAsync();
        Assert.Empty(await pull.WaitAsync(TimeSpan.FromSeconds(30)));

        // Shutdown ends a wait too (the agent is leaving this queue).
        var another = receiver.GetQueueMessagesAsync(0, CancellationToken.None);
        await receiver.Shutdown(TimeSpan.FromSeconds(1));
        Assert.Empty(await another.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_published_batch_reaches_the_receiver_of_its_queue_as_the_same_object_in_order_with_rising_tokens()
    {
        var factory = Factory();
        var adapter = await factory.CreateAdapter();
        var stream = StreamId.Create("activity-aggregation", "1");
        var (first, second) = (Batch(), Batch());
        await adapter.QueueMessageBatchAsync(stream, [first], null, null);
        await adapter.QueueMessageBatchAsync(stream, [second], null, null);

        var pulled = await Pull(factory, stream);
        Assert.Equal(2, pulled.Count);
        Assert.All(pulled, c => Assert.Equal(stream, c.StreamId));
        // By reference: no serialisation and no copy on the way.
        Assert.Same(first, Assert.Single(pulled[0].GetEvents<EventBatch>()).Item1);
        Assert.Same(second, Assert.Single(pulled[1].GetEvents<EventBatch>()).Item1);
        Assert.True(pulled[1].SequenceToken.Newer(pulled[0].SequenceToken));
        Assert.Empty(await Pull(factory, stream));
    }

    [Fact]
    public async Task A_receiver_takes_at_most_what_the_agent_asks_for()
    {
        var factory = Factory();
        var adapter = await factory.CreateAdapter();
        var stream = StreamId.Create("graph-updates", "0");
        for (var i = 0; i < 5; i++) await adapter.QueueMessageBatchAsync(stream, [Batch()], null, null);
        Assert.Equal(3, (await Pull(factory, stream, max: 3)).Count);
        Assert.Equal(2, (await Pull(factory, stream)).Count);
        Assert.Equal(0, factory.Waiting);
    }

    [Fact]
    public async Task A_full_queue_refuses_the_publish_with_a_reason_and_takes_messages_again_once_read()
    {
        var factory = Factory(queues: 1, capacity: 16);
        var adapter = await factory.CreateAdapter();
        var stream = StreamId.Create(StreamNames.Fronting, "2");
        for (var i = 0; i < 16; i++) await adapter.QueueMessageBatchAsync(stream, [Batch()], null, null);
        var full = await Assert.ThrowsAsync<LocalQueueFullException>(() => adapter.QueueMessageBatchAsync(stream, [Batch()], null, null));
        Assert.Contains("16 undelivered messages", full.Message);
        Assert.Contains("Keystone:Streaming:LocalQueueCapacity", full.Message);

        Assert.Equal(16, (await Pull(factory, stream)).Count);
        await adapter.QueueMessageBatchAsync(stream, [Batch()], null, null);
        Assert.Equal(1, factory.Waiting);
    }

    [Fact]
    public async Task Only_the_source_is_refused_by_a_full_queue_and_what_flows_behind_it_counts_against_the_source()
    {
        var factory = Factory(queues: 1, capacity: 16);
        var adapter = await factory.CreateAdapter();
        var fronting = StreamId.Create(StreamNames.Fronting, "0");
        var topic = StreamId.Create("activity-aggregation", "0");
        // A router or an operator publishes while its own delivery waits on it: never refused, even past the capacity.
        for (var i = 0; i < 40; i++) await adapter.QueueMessageBatchAsync(topic, [Batch()], null, null);
        Assert.Equal(40, factory.Waiting);
        // The source is: its consumers' work fills the queue it would add to.
        await Assert.ThrowsAsync<LocalQueueFullException>(() => adapter.QueueMessageBatchAsync(fronting, [Batch()], null, null));

        Assert.Equal(40, (await Pull(factory, topic, max: 100)).Count);
        await adapter.QueueMessageBatchAsync(fronting, [Batch()], null, null);
        Assert.Equal(1, factory.Waiting);
    }

    [Fact]
    public async Task A_message_of_several_items_gives_each_its_own_token_and_only_the_items_of_the_asked_type()
    {
        var factory = Factory();
        var adapter = await factory.CreateAdapter();
        var stream = StreamId.Create("archive-all-events", "3");
        var (a, b) = (Batch(3), Batch(3));
        await adapter.QueueMessageBatchAsync<object>(stream, [a, "not a batch", b], null, null);

        var events = (await Pull(factory, stream)).Single().GetEvents<EventBatch>().ToList();
        Assert.Equal([a, b], events.Select(e => e.Item1));
        Assert.True(events[1].Item2.Newer(events[0].Item2));
    }

    [Fact]
    public async Task A_producer_cannot_set_a_sequence_token_since_the_queues_are_not_rewindable()
    {
        var adapter = await Factory().CreateAdapter();
        Assert.False(adapter.IsRewindable);
        await Assert.ThrowsAsync<ArgumentException>(() => adapter.QueueMessageBatchAsync(StreamId.Create("t", "0"), [Batch()], new EventSequenceTokenV2(7), null));
    }

    [Fact]
    public async Task Every_silo_reads_every_queue_because_each_holds_its_own()
    {
        var factory = Factory(queues: 6);
        var balancer = new EveryQueueBalancer();
        await balancer.Initialize(factory.GetStreamQueueMapper());
        Assert.Equal(factory.GetStreamQueueMapper().GetAllQueues().OrderBy(q => q.ToString()), balancer.GetMyQueues().OrderBy(q => q.ToString()));
        Assert.Equal(6, balancer.GetMyQueues().Count());
    }

    [Fact]
    public async Task A_refused_publish_crosses_to_another_silo_and_reaches_a_client_as_the_shared_busy_exception()
    {
        // Unserialisable, it had reached clients as a CodecNotFoundException, which the SDK takes for a permanent error
        // and dead-letters: a short overload lost batches instead of delaying them.
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var factory = Factory(queues: 1, capacity: 16);
        var adapter = await factory.CreateAdapter();
        var fronting = StreamId.Create(StreamNames.Fronting, "0");
        for (var i = 0; i < 16; i++) await adapter.QueueMessageBatchAsync(fronting, [Batch()], null, null);
        var full = await Assert.ThrowsAsync<LocalQueueFullException>(() => adapter.QueueMessageBatchAsync(fronting, [Batch()], null, null));

        var atIngest = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(full));
        Assert.IsType<LocalQueueFullException>(atIngest);
        Assert.Equal(full.Message, atIngest.Message);
        var atClient = serializer.Deserialize<Exception>(serializer.SerializeToArray<Exception>(new PipelineBusyException("busy: " + full.Message)));
        Assert.Equal("busy: " + full.Message, Assert.IsType<PipelineBusyException>(atClient).Message);
        Assert.True(Keystone.Client.Publishing.KeystonePublisher.IsTransient(atClient));
    }

    [Fact]
    public async Task A_container_sent_to_another_silo_round_trips_through_the_Orleans_serializer()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var factory = Factory();
        var stream = StreamId.Create("graph-updates", "5");
        var batch = Batch(5);
        await (await factory.CreateAdapter()).QueueMessageBatchAsync(stream, [batch], null, null);
        var container = (await Pull(factory, stream)).Single();

        var copy = serializer.Deserialize<IBatchContainer>(serializer.SerializeToArray<IBatchContainer>(container));
        Assert.NotNull(copy);
        Assert.Equal(stream, copy.StreamId);
        Assert.Equal(container.SequenceToken, copy.SequenceToken);
        var received = Assert.Single(copy.GetEvents<EventBatch>()).Item1;
        Assert.Equal(batch.BatchId, received.BatchId);
        Assert.Equal(batch.Events.Select(e => e.EventId), received.Events.Select(e => e.EventId));
    }
}
