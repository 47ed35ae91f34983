using System.Diagnostics;
using Keystone.Events;
using Microsoft.Extensions.DependencyInjection;
using Keystone.Topics;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Keystone.Bench;

/// <summary>
/// The design batching is measured against: each event published as its own stream message (one OnNextAsync per
/// event) to an implicitly subscribed grain per user that counts it, on the same memory stream provider.
/// </summary>
public static class PerEventBaseline
{
    public const string Namespace = "_bench-per-event";

    public static async Task<RunResult> Run(BenchCluster cluster, KeystoneEvent[] events, int concurrency = 256)
    {
        // The silo's own client (co-hosted), as in the measurement this design is known by; external clients have no stream provider here.
        var client = cluster.Silo.App.Services.GetRequiredService<IClusterClient>();
        var provider = client.GetStreamProvider(StreamNames.Provider);
        var streams = new Dictionary<string, IAsyncStream<KeystoneEvent>>();
        var clock = Stopwatch.StartNew();
        var inFlight = new List<Task>(concurrency);
        foreach (var e in events)
        {
            var key = e.PartitionKey;
            if (!streams.TryGetValue(key, out var stream)) streams[key] = stream = provider.GetStream<KeystoneEvent>(StreamId.Create(Namespace, key));
            inFlight.Add(stream.OnNextAsync(e with { Timestamp = DateTimeOffset.UtcNow }));
            if (inFlight.Count >= concurrency)
            {
                await Task.WhenAll(inFlight);
                inFlight.Clear();
            }
        }
        await Task.WhenAll(inFlight);

        var keys = streams.Keys.ToArray();
        while (true)
        {
            var counts = await Task.WhenAll(keys.Select(k => client.GetGrain<IPerEventCounterGrain>(k).GetCount()));
            if (counts.Sum() >= events.Length)
                return new RunResult("per-event-messages", events.Length, counts.Sum(), clock.Elapsed, LatencySnapshot.Empty);
            if (clock.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"per-event baseline: {counts.Sum()} of {events.Length} after 10 minutes");
            await Task.Delay(100);
        }
    }
}

public interface IPerEventCounterGrain : IGrainWithStringKey
{
    Task<long> GetCount();
}

[ImplicitStreamSubscription(PerEventBaseline.Namespace)]
public sealed class PerEventCounterGrain : Grain, IPerEventCounterGrain, IStreamSubscriptionObserver, IAsyncObserver<KeystoneEvent>
{
    private long _count;

    public Task<long> GetCount() => Task.FromResult(_count);

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<KeystoneEvent>().ResumeAsync(this);

    public Task OnNextAsync(KeystoneEvent item, StreamSequenceToken? token = null)
    {
        _count++;
        return Task.CompletedTask;
    }

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
