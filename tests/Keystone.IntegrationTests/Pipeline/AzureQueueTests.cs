using System.Net;
using Azure.Storage.Queues;
using Xunit.Abstractions;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Routing;
using Keystone.Topics;

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
}
