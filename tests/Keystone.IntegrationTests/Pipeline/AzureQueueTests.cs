using System.Net;
using Azure.Storage.Queues;
using Xunit.Abstractions;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Routing;
using Keystone.Silo.Streaming;
using Keystone.Topics;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Streams;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>The durable provider: Azure Queue streams on Azurite, with redelivered messages and re-sent events.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureQueueTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Azure_queue_streams_carry_events_end_to_end_and_duplicates_are_not_double_counted()
    {
        var prefix = "kq" + Guid.NewGuid().ToString("N")[..10];
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "AzureQueue";
        settings["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        settings["Keystone:Streaming:AzureQueue:QueueCount"] = "2";
        // A slow poll leaves freshly written messages in the queues long enough to copy them.
        settings["Keystone:Streaming:PollPeriod"] = "00:00:02";
        await using var silo = await TestSilo.StartAsync(settings);

        var events = Enumerable.Range(0, 40).Select(i => TestEvents.Play($"aq-user-{i % 9}", $"video-{i % 5}")).ToArray();
        var response = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // Redeliver: copy every message still in the queues (fronting batches) back into its queue.
        var queues = new QueueServiceClient(azurite.ConnectionString);
        var copied = 0;
        for (var q = 0; q < 2; q++)
        {
            var queue = queues.GetQueueClient($"{prefix}-{q}");
            foreach (var message in (await queue.PeekMessagesAsync(32)).Value)
            {
                await queue.SendMessageAsync(message.MessageText);
                copied++;
            }
        }

        // A producer retry: the same events sent again in a new request.
        var resent = await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events.Take(10))));
        Assert.Equal(HttpStatusCode.Accepted, resent.StatusCode);

        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n >= 40, TimeSpan.FromSeconds(60), "40 archived events");
        // The copies were queued before the sentinels, in the same queues: once the sentinels are through, so are they,
        // and the counts must still be exact (40 plus one sentinel play per partition).
        var sentinels = (await Drain.SentinelsAsync(silo)).Count;
        Assert.Equal(40 + sentinels, await silo.DeliveredAsync("archive-all-events"));
        Assert.Equal(40 + sentinels, await silo.DeliveredAsync("analytics-playback-events"));

        var routers = await Task.WhenAll(Enumerable.Range(0, 4).Select(p => silo.Client.GetGrain<IRouterGrain>(StreamNames.PartitionKey(p)).GetStats()));
        var query = await silo.QueryAsync();
        var tapDuplicates = (await query.GetTopicAsync("archive-all-events")).Duplicates;
        output.WriteLine($"copied {copied} queue messages; routers saw {routers.Sum(r => r.Duplicates)} duplicates, taps {tapDuplicates}");
        // Every re-sent event was recognised by a router; copied batches were recognised by a router or a tap.
        Assert.True(routers.Sum(r => r.Duplicates) >= 10, $"routers saw {routers.Sum(r => r.Duplicates)} duplicates");
        Assert.True(copied == 0 || routers.Sum(r => r.Duplicates) + tapDuplicates > 10, $"copied {copied} messages but only {routers.Sum(r => r.Duplicates)} router and {tapDuplicates} tap duplicates were seen");
    }

    [Fact]
    public async Task Idle_queues_are_read_less_and_less_often_and_a_message_after_the_wait_still_flows()
    {
        var prefix = "kqi" + Guid.NewGuid().ToString("N")[..10];
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "AzureQueue";
        settings["Keystone:Streaming:AzureQueue:QueuePrefix"] = prefix;
        settings["Keystone:Streaming:AzureQueue:QueueCount"] = "4";
        await using var silo = await TestSilo.StartAsync(settings);
        var factory = Assert.IsType<IdlePollingQueueAdapterFactory>(silo.Services.GetRequiredKeyedService<IQueueAdapterFactory>(StreamNames.Provider));

        var first = Enumerable.Range(0, 20).Select(i => TestEvents.Play($"aqi-user-{i % 3}", "video-1")).ToArray();
        Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(first)))).StatusCode);
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n >= 20, TimeSpan.FromSeconds(60), "the first 20 events archived");

        // Idle now (but for checkpoint barriers): the agents poll every 10 ms, and most polls must not reach storage.
        var (reads, skipped) = (factory.Reads, factory.Skipped);
        await Eventually.Until(() => Task.FromResult(factory.Skipped - skipped), n => n >= 1_000, TimeSpan.FromSeconds(60), "1,000 polls of idle queues");
        var (idleReads, idleSkipped) = (factory.Reads - reads, factory.Skipped - skipped);
        output.WriteLine($"while idle: {idleReads} reads went to storage, {idleSkipped} polls were answered without it");
        // 1,012 to 40 when measured; a loaded machine ticks the agents' timers less often, so the bound is loose.
        Assert.True(idleReads * 2 <= idleSkipped, $"{idleReads} reads went to storage against {idleSkipped} polls answered without it");

        // A queue backed off up to a second is woken by this silo's own enqueue, and the events flow as before.
        var second = Enumerable.Range(0, 20).Select(i => TestEvents.Play($"aqi-user-{i % 3}", "video-2")).ToArray();
        Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(second)))).StatusCode);
        await Eventually.Until(() => silo.DeliveredAsync("archive-all-events"), n => n >= 40, TimeSpan.FromSeconds(60), "all 40 events archived");
    }
}
