using System.Text;
using System.Text.Json;
using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;
using Keystone.UnitTests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Keystone.UnitTests.Publishing;

public sealed class KeystonePublisherTests : IDisposable
{
    private readonly string _deadLetters = Path.Combine(Path.GetTempPath(), $"keystone-unit-dlq-{Guid.NewGuid():N}.jsonl");
    private readonly FakeTransport _transport = new();

    public void Dispose()
    {
        if (File.Exists(_deadLetters)) File.Delete(_deadLetters);
    }

    // A long linger by default, so only the trigger a test is about sends anything.
    private PublisherOptions Options(Action<PublisherOptions>? configure = null)
    {
        var o = new PublisherOptions
        {
            DeadLetterPath = _deadLetters,
            Linger = TimeSpan.FromSeconds(30),
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
            MaxRetryDelay = TimeSpan.FromMilliseconds(40),
            RetryJitter = 0,
        };
        configure?.Invoke(o);
        return o;
    }

    private KeystonePublisher Publisher(Action<PublisherOptions>? configure = null, TimeProvider? time = null) =>
        new(_transport, Options(configure), SchemaRegistry.Embedded, time: time);

    private static KeystoneEvent[] Events(int n) =>
        Enumerable.Range(0, n).Select(i => Sample.PlayStarted(userId: $"user-{i:D3}")).ToArray();

    private static KeystoneEvent Invalid() => Sample.PlayStarted(quality: "8K");

    [Fact]
    public async Task Events_are_batched_by_count_and_sent_lz4_compressed_in_binary_form()
    {
        var events = Events(25);
        await using (var publisher = Publisher(o => o.MaxBatchEvents = 10))
        {
            foreach (var e in events) Assert.Equal(PublishStatus.Queued, (await publisher.PublishAsync(e)).Status);
            await publisher.FlushAsync();

            Assert.Equal([10, 10, 5], _transport.Batches.Select(b => b.Length));
            Assert.Equal(events, _transport.Batches.SelectMany(b => b));
            Assert.All(_transport.Requests, r =>
            {
                Assert.Equal(BodyCompression.Lz4, r.Compression);
                Assert.Equal(BodyFormat.Binary, r.Format);
                Assert.Equal("sdk", r.Origin);
            });
            Assert.Equal(events[..10], EventBatchCodec.Decode(FakeTransport.Body(_transport.Requests[0])));

            var metrics = publisher.Metrics.Snapshot();
            Assert.Equal((25L, 0L, 0L, 0L, 3L, 10), (metrics.Published, metrics.Rejected, metrics.Retried, metrics.DeadLettered, metrics.Batches, metrics.MaxBatchSize));
            Assert.Equal(25 / 3.0, metrics.AverageBatchSize, 10);
            Assert.Equal(0, metrics.QueueDepth);
            Assert.Equal(3, metrics.FlushLatency.Count);
        }
        Assert.False(File.Exists(_deadLetters));
    }

    [Fact]
    public async Task The_ingest_side_accepts_what_the_publisher_sends()
    {
        var events = Events(3);
        await using var publisher = Publisher();
        foreach (var e in events) await publisher.PublishAsync(e);
        await publisher.FlushAsync();

        var request = Assert.Single(_transport.Requests);
        var parsed = EventBatchParser.Parse(FakeTransport.Body(request), request.Format, SchemaRegistry.Embedded, now: Sample.Now);
        Assert.Equal(events, parsed.Events);
        Assert.Empty(parsed.Rejections);
    }

    [Fact]
    public async Task Batches_respect_the_byte_limit()
    {
        var events = Events(40);
        var eventBytes = EventJson.SerializeToUtf8(events[0]).Length + 1;
        await using var publisher = Publisher(o =>
        {
            o.MaxBatchBytes = 2048;
            o.MaxEventBytes = 1024;
        });
        foreach (var e in events) await publisher.PublishAsync(e);
        await publisher.FlushAsync();

        var perBatch = 2048 / eventBytes;
        // The byte limit is on the events as JSON (what the cluster limits), whatever form they travel in.
        Assert.All(_transport.Batches, b => Assert.True(b.Sum(e => EventJson.SizeOf(e) + 1) <= 2048));
        Assert.Equal(Enumerable.Repeat(perBatch, 40 / perBatch).Append(40 % perBatch).Where(n => n > 0), _transport.Batches.Select(b => b.Length));
        Assert.Equal(events, _transport.Batches.SelectMany(b => b));
    }

    [Fact]
    public async Task Invalid_events_are_rejected_locally_counted_and_never_sent()
    {
        await using var publisher = Publisher();

        var result = await publisher.PublishAsync(Invalid());
        Assert.Equal(PublishStatus.Rejected, result.Status);
        Assert.False(result.IsQueued);
        Assert.Equal(new ValidationError("payload.quality", "'8K' is not one of 4K, HD, SD"), result.Error);
        Assert.Equal("Rejected: payload.quality: '8K' is not one of 4K, HD, SD", result.ToString());

        var unknown = publisher.TryPublish(Sample.PlayStarted(eventType: "video.play.strated"));
        Assert.Equal(PublishStatus.Rejected, unknown.Status);
        Assert.Equal("event_type", unknown.Error!.Field);

        await publisher.FlushAsync();
        Assert.Equal(0, _transport.Calls);
        Assert.Equal(2, publisher.Metrics.Snapshot().Rejected);
        Assert.Equal(0, publisher.Metrics.Snapshot().Published);
    }

    [Fact]
    public async Task Events_larger_than_the_local_limit_are_rejected()
    {
        await using var publisher = Publisher(o => o.MaxEventBytes = 256);
        var result = publisher.TryPublish(Sample.PlayStarted());
        Assert.Equal(PublishStatus.Rejected, result.Status);
        Assert.Equal("event", result.Error!.Field);
    }

    [Fact]
    public async Task Validation_uses_the_publishers_clock()
    {
        await using var publisher = Publisher(time: new FixedTimeProvider(Sample.Now.AddHours(-2)));
        var result = publisher.TryPublish(Sample.PlayStarted());
        Assert.Equal(PublishStatus.Rejected, result.Status);
        Assert.Equal("timestamp", result.Error!.Field);
    }

    [Fact]
    public async Task Transient_failures_are_retried_until_they_succeed()
    {
        _transport.Before = call => call <= 2 ? throw new IOException("broker unavailable") : Task.CompletedTask;
        var events = Events(5);
        await using var publisher = Publisher(o => o.MaxRetries = 3);
        foreach (var e in events) await publisher.PublishAsync(e);
        await publisher.FlushAsync();

        Assert.Equal(3, _transport.Calls);
        Assert.Equal(events, Assert.Single(_transport.Batches));
        var metrics = publisher.Metrics.Snapshot();
        Assert.Equal((5L, 2L, 0L), (metrics.Published, metrics.Retried, metrics.DeadLettered));
        Assert.False(File.Exists(_deadLetters));
    }

    [Fact]
    public async Task A_body_goes_back_to_the_pool_once_answered_and_never_after_a_failed_attempt()
    {
        // The second batch's first attempt fails: the cluster may still read that attempt's bytes (a grain call goes on
        // after its caller stopped waiting), so its body must never be handed to another batch.
        var pool = new RecordingPool();
        _transport.Before = call => call == 2 ? throw new IOException("broker unavailable") : Task.CompletedTask;
        await using var publisher = new KeystonePublisher(_transport, Options(o => o.MaxRetries = 3), SchemaRegistry.Embedded) { BodyPool = pool };
        var first = Events(5);
        var second = Events(7);
        foreach (var e in first) await publisher.PublishAsync(e);
        await publisher.FlushAsync();
        foreach (var e in second) await publisher.PublishAsync(e);
        await publisher.FlushAsync();

        Assert.Equal([first, second], _transport.Batches);
        Assert.Equal(2, pool.Rented.Count);
        Assert.Same(pool.Rented[0], Assert.Single(pool.Returned));
    }

    private sealed class RecordingPool : System.Buffers.ArrayPool<byte>
    {
        public List<byte[]> Rented { get; } = [];
        public List<byte[]> Returned { get; } = [];

        public override byte[] Rent(int minimumLength)
        {
            var array = new byte[minimumLength];
            lock (Rented) Rented.Add(array);
            return array;
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            lock (Returned) Returned.Add(array);
        }
    }

    [Fact]
    public async Task Retries_wait_with_exponential_backoff()
    {
        var time = new FakeTimeProvider(Sample.Now);
        var calls = new List<TimeSpan>();
        _transport.Before = call =>
        {
            lock (calls) calls.Add(time.GetUtcNow() - Sample.Now);
            return call <= 3 ? throw new TimeoutException("slow") : Task.CompletedTask;
        };
        await using var publisher = Publisher(o =>
        {
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.MaxRetryDelay = TimeSpan.FromMilliseconds(200);
            o.RetryJitter = 0;
        }, time);
        await publisher.PublishAsync(Sample.PlayStarted());
        var flush = publisher.FlushAsync();
        // The publisher's clock moves only when the test moves it: a millisecond at a time until the fourth call. Each
        // step also lets real time pass, so that on a loaded machine the sender has scheduled its next wait before the
        // clock moves on (a loop bounded by the fake clock alone could run out first and leave the flush waiting forever).
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (!flush.IsCompleted && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
            await Task.Delay(1);
        }
        Assert.True(flush.IsCompleted, $"the flush did not complete; {calls.Count} calls by {(time.GetUtcNow() - Sample.Now).TotalMilliseconds} ms of the publisher's clock");
        await flush;

        Assert.Equal(4, calls.Count);
        // Gaps of at least 20, 40 and 80 ms of the publisher's clock: never early, whatever the machine's load.
        var gaps = calls.Zip(calls.Skip(1), (a, b) => b - a).ToList();
        Assert.True(gaps[0] >= TimeSpan.FromMilliseconds(20) && gaps[1] >= TimeSpan.FromMilliseconds(40) && gaps[2] >= TimeSpan.FromMilliseconds(80),
            $"gaps: {string.Join(", ", gaps.Select(g => g.TotalMilliseconds))} ms");
    }

    [Fact]
    public async Task After_the_last_retry_the_batch_goes_to_the_dead_letter_file()
    {
        _transport.Before = _ => throw new IOException("broker unavailable");
        var events = Events(3);
        await using (var publisher = Publisher(o => o.MaxRetries = 2, new FixedTimeProvider(Sample.Now)))
        {
            foreach (var e in events) await publisher.PublishAsync(e);
            await publisher.FlushAsync();

            Assert.Equal(3, _transport.Calls);
            var metrics = publisher.Metrics.Snapshot();
            Assert.Equal((0L, 2L, 3L), (metrics.Published, metrics.Retried, metrics.DeadLettered));
            Assert.Equal(Path.GetFullPath(_deadLetters), publisher.DeadLetterPath);
        }

        var lines = File.ReadAllLines(_deadLetters);
        Assert.Equal(3, lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            var header = doc.RootElement.GetProperty("dead_letter");
            Assert.Equal("IOException: broker unavailable", header.GetProperty("reason").GetString());
            Assert.Equal(3, header.GetProperty("attempts").GetInt32());
            Assert.Equal("2024-12-26T12:00:00Z", header.GetProperty("at").GetString());
            Assert.Equal(events[i], EventJson.Parse(doc.RootElement.GetProperty("event").GetRawText()));
        }

        var ndjson = DeadLetterFile.ReadEventsAsNdjson(_deadLetters);
        Assert.Equal(events, Encoding.UTF8.GetString(ndjson).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(EventJson.Parse));
        // The file can be published again as it is.
        Assert.Equal(events, EventBatchParser.Parse(ndjson, BodyFormat.Auto, SchemaRegistry.Embedded, now: Sample.Now).Events);
    }

    [Fact]
    public async Task Non_transient_failures_are_dead_lettered_without_retrying()
    {
        _transport.Before = _ => throw new ArgumentException("request is malformed");
        await using (var publisher = Publisher(o => o.MaxRetries = 5))
        {
            await publisher.PublishAsync(Sample.PlayStarted());
            await publisher.FlushAsync();

            Assert.Equal(1, _transport.Calls);
            Assert.Equal((0L, 1L), (publisher.Metrics.Snapshot().Retried, publisher.Metrics.Snapshot().DeadLettered));
        }
        using var doc = JsonDocument.Parse(Assert.Single(File.ReadAllLines(_deadLetters)));
        Assert.Equal("ArgumentException: request is malformed", doc.RootElement.GetProperty("dead_letter").GetProperty("reason").GetString());
        Assert.Equal(1, doc.RootElement.GetProperty("dead_letter").GetProperty("attempts").GetInt32());
    }

    [Fact]
    public async Task A_batch_the_cluster_refuses_as_a_whole_is_dead_lettered_at_once()
    {
        _transport.Respond = _ => IngestResult.Malformed("the body is garbled");
        await using (var publisher = Publisher())
        {
            await publisher.PublishAsync(Sample.PlayStarted());
            await publisher.PublishAsync(Sample.Payment());
            await publisher.FlushAsync();
            Assert.Equal(1, _transport.Calls);
            Assert.Equal(2, publisher.Metrics.Snapshot().DeadLettered);
        }
        var lines = File.ReadAllLines(_deadLetters);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"reason\":\"cluster refused the batch: the body is garbled\"", l));
    }

    [Fact]
    public async Task Events_the_cluster_rejects_are_counted_and_reported()
    {
        var rejection = new EventRejection(1, "some-id", "payload.user_id", "payload.user_id: unknown user");
        _transport.Respond = events => new IngestResult(events.Length - 1, 0, [rejection]);
        IReadOnlyList<EventRejection>? reported = null;
        await using var publisher = Publisher();
        publisher.ServerRejected += r => reported = r;

        foreach (var e in Events(3)) await publisher.PublishAsync(e);
        await publisher.FlushAsync();

        Assert.Equal([rejection], reported);
        var metrics = publisher.Metrics.Snapshot();
        Assert.Equal((2L, 1L, 0L), (metrics.Published, metrics.Rejected, metrics.DeadLettered));
    }

    // Holds the first send open so that the send loop stalls and the queue fills up behind it.
    private async Task<TaskCompletionSource> FillQueue(KeystonePublisher publisher)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _transport.Before = _ => gate.Task;
        var events = Events(4);

        Assert.True(publisher.TryPublish(events[0]).IsQueued);
        await FakeTransport.Until(() => _transport.Calls == 1, what: "the first send");
        // The second event is taken off the queue and then waits for the busy send slot.
        Assert.True(publisher.TryPublish(events[1]).IsQueued);
        await FakeTransport.Until(() => publisher.Metrics.Snapshot().QueueDepth == 0, what: "the loop to take the second event");
        Assert.True(publisher.TryPublish(events[2]).IsQueued);
        Assert.True(publisher.TryPublish(events[3]).IsQueued);
        Assert.Equal(2, publisher.Metrics.Snapshot().QueueDepth);
        return gate;
    }

    [Fact]
    public async Task Backpressure_fail_throws_at_once_when_the_queue_is_full()
    {
        await using var publisher = Publisher(o =>
        {
            o.QueueCapacity = 2;
            o.MaxBatchEvents = 1;
            o.Backpressure = BackpressureMode.Fail;
        });
        var gate = await FillQueue(publisher);

        Assert.Equal(PublishStatus.QueueFull, publisher.TryPublish(Sample.PlayStarted()).Status);
        var e = await Assert.ThrowsAsync<PublisherOverloadedException>(async () => await publisher.PublishAsync(Sample.PlayStarted()));
        Assert.Equal(
            "The publisher queue is full (2 events waiting); the cluster is not keeping up or is unreachable. Slow down, raise QueueCapacity, or allow a longer MaxBlockTime.",
            e.Message);
        // An invalid event is still answered by validation, not by the full queue.
        Assert.Equal(PublishStatus.Rejected, (await publisher.PublishAsync(Invalid())).Status);

        gate.SetResult();
        await publisher.FlushAsync();
        Assert.Equal(4, publisher.Metrics.Snapshot().Published);
    }

    [Fact]
    public async Task Backpressure_wait_gives_up_after_max_block_time()
    {
        var time = new FakeTimeProvider(Sample.Now);
        await using var publisher = Publisher(o =>
        {
            o.QueueCapacity = 2;
            o.MaxBatchEvents = 1;
            o.Backpressure = BackpressureMode.Wait;
            o.MaxBlockTime = TimeSpan.FromMilliseconds(100);
        }, time);
        var gate = await FillQueue(publisher);

        // The wait's timer starts before PublishAsync returns; it fires when the publisher's clock reaches 100 ms.
        var waiting = publisher.PublishAsync(Sample.PlayStarted());
        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        var e = await Assert.ThrowsAsync<PublisherOverloadedException>(async () => await waiting);

        Assert.Equal(
            "The publisher queue is full (2 events waiting) and no room freed within 100 ms; the cluster is not keeping up or is unreachable. Slow down, raise QueueCapacity, or allow a longer MaxBlockTime.",
            e.Message);

        gate.SetResult();
        await publisher.FlushAsync();
        Assert.Equal(4, publisher.Metrics.Snapshot().Published);
    }

    [Fact]
    public async Task Backpressure_wait_succeeds_when_room_frees_in_time()
    {
        var time = new FakeTimeProvider(Sample.Now);
        await using var publisher = Publisher(o =>
        {
            o.QueueCapacity = 2;
            o.MaxBatchEvents = 1;
            o.Backpressure = BackpressureMode.Wait;
            o.MaxBlockTime = TimeSpan.FromSeconds(10);
        }, time);
        var gate = await FillQueue(publisher);

        // Still waiting with all but a millisecond of its 10 s gone on the publisher's clock; then room frees.
        var waiting = publisher.PublishAsync(Sample.PlayStarted()).AsTask();
        time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));
        Assert.False(waiting.IsCompleted);
        gate.SetResult();

        Assert.Equal(PublishStatus.Queued, (await waiting).Status);
        await publisher.FlushAsync();
        Assert.Equal(5, publisher.Metrics.Snapshot().Published);
    }

    [Fact]
    public async Task Cancelling_a_waiting_publish_throws_cancellation_not_overload()
    {
        await using var publisher = Publisher(o =>
        {
            o.QueueCapacity = 2;
            o.MaxBatchEvents = 1;
            o.MaxBlockTime = TimeSpan.FromSeconds(10);
        });
        var gate = await FillQueue(publisher);

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await publisher.PublishAsync(Sample.PlayStarted(), cts.Token));
        gate.SetResult();
    }

    [Fact]
    public async Task Linger_sends_a_lone_event_without_a_flush()
    {
        var e = Sample.PlayStarted();
        var time = new FakeTimeProvider(Sample.Now);
        DateTimeOffset? sentAt = null;
        _transport.Before = _ =>
        {
            sentAt = time.GetUtcNow();
            return Task.CompletedTask;
        };
        await using var publisher = Publisher(o => o.Linger = TimeSpan.FromMilliseconds(50), time);
        await publisher.PublishAsync(e);

        // Only the publisher's clock moving lets the linger expire: a millisecond at a time until the batch goes (with a
        // little real time per step, for the sender to run on a loaded machine).
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (_transport.Batches.Count == 0 && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
            await Task.Delay(1);
        }
        Assert.NotEmpty(_transport.Batches);

        Assert.True(sentAt - Sample.Now >= TimeSpan.FromMilliseconds(50), $"sent after {(sentAt - Sample.Now)?.TotalMilliseconds} ms of the publisher's clock");
        Assert.Equal([e], _transport.Batches[0]);
    }

    [Fact]
    public async Task Dispose_sends_what_is_still_queued()
    {
        var events = Events(3);
        var publisher = Publisher();
        foreach (var e in events) await publisher.PublishAsync(e);
        Assert.Equal(0, _transport.Calls);

        await publisher.DisposeAsync();

        Assert.Equal(events, Assert.Single(_transport.Batches));
    }

    [Fact]
    public async Task Flush_with_nothing_queued_completes()
    {
        await using var publisher = Publisher();
        await publisher.FlushAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, _transport.Calls);
    }

    [Theory]
    [InlineData("MaxEventBytes", "Invalid publisher options: MaxEventBytes must not exceed MaxBatchBytes.")]
    [InlineData("Linger", "Invalid publisher options: Linger must be positive.")]
    [InlineData("Retry", "Invalid publisher options: need 0 <= RetryBaseDelay <= MaxRetryDelay.")]
    [InlineData("QueueCapacity", "Invalid publisher options: The field QueueCapacity must be between 1 and 10000000.")]
    public void Bad_options_are_refused_up_front(string which, string message)
    {
        var o = Options();
        switch (which)
        {
            case "MaxEventBytes": o.MaxBatchBytes = 2048; o.MaxEventBytes = 4096; break;
            case "Linger": o.Linger = TimeSpan.Zero; break;
            case "Retry": o.MaxRetryDelay = TimeSpan.FromMilliseconds(1); break;
            default: o.QueueCapacity = 0; break;
        }
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => new KeystonePublisher(_transport, o)).Message);
    }

    [Theory]
    [InlineData(typeof(IOException), true)]
    [InlineData(typeof(TimeoutException), true)]
    [InlineData(typeof(OperationCanceledException), true)]
    [InlineData(typeof(ArgumentException), false)]
    [InlineData(typeof(FormatException), false)]
    [InlineData(typeof(NotSupportedException), false)]
    public void Transient_failures_are_told_apart(Type exception, bool transient) =>
        Assert.Equal(transient, KeystonePublisher.IsTransient((Exception)Activator.CreateInstance(exception)!));
}
