using Keystone.Ads;
using Keystone.Client.Simulation;
using Keystone.Events;
using Keystone.Graph;
using Keystone.Ingest;
using Keystone.Pipeline;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Runs the event path's pure code once over generated events of every type while the silo starts, so that the
/// first real batch does not pay for compiling it. The quick start publishes its catalogue (about 500 events) the
/// moment the silo is up: that burst reached its taps 240–370 ms after it was published, against about 175 ms when
/// the same burst came once the process had settled, and every later event in about 70 ms. Nothing here touches a
/// grain, a stream or storage: the events are encoded, compressed, decoded, validated, routed with the live rules and
/// written as archive lines, and then dropped.
/// </summary>
internal static class PipelineWarmUp
{
    /// <summary>What the run went through: events validated and rejected, and (event, topic) deliveries routed.</summary>
    public readonly record struct Outcome(int Validated, int Rejected, int Deliveries);

    public static Outcome Run(SchemaRegistryProvider schemas, RoutingRulesProvider rules, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var simulator = new TrafficSimulator(new SimulationOptions { Users = 40, Videos = 20, ConcurrentSessions = 20, Seed = 7 });
        var events = simulator.Catalogue(now).Concat(Enumerable.Range(0, 400).Select(_ => simulator.Next(now))).ToArray();

        // The SDK's side (the local simulator publishes through it in this process), then ingest's.
        var body = Lz4Codec.Compress(EventBatchCodec.Encode(events));
        var rented = Lz4Codec.DecompressRented(body, int.MaxValue, out var length);
        var decoded = EventBatchCodec.Decode(rented.AsSpan(0, length));
        System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        var parsed = EventBatchParser.ValidateDecoded(decoded, schemas.Current, now: now);

        // Routing with its transforms, then what the archive, the graph and the ads stage read of each event.
        var routed = rules.Current.Route(decoded, 0, now);
        foreach (var e in decoded)
        {
            EventJson.WriteLine(Stream.Null, e);
            GraphEventMapper.Map(e, out _);
            AdEvents.From(e);
        }
        return new Outcome(parsed.Events.Count, parsed.Rejections.Count, routed.Deliveries);
    }
}
