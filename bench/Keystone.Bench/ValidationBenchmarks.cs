using BenchmarkDotNet.Attributes;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Schemas;

namespace Keystone.Bench;

/// <summary>
/// The per-event cost of validation on both sides, the SDK (typed event) and ingest (JSON parse + validate, or the SDK's
/// binary batches, decoded), and of what the pipeline reads from every event: its partition, and the ads' fields.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class ValidationBenchmarks
{
    private const int Count = 1_000;
    private KeystoneEvent[] _events = [];
    private int[] _sizes = [];
    private byte[] _ndjson = [];
    private KeystoneEvent[] _ads = [];
    private readonly SchemaRegistry _registry = SchemaRegistry.Embedded;
    private readonly ValidationLimits _limits = ValidationLimits.Default;

    [GlobalSetup]
    public void Setup()
    {
        _events = PipelineBenchmark.Generate(Count, seed: 7);
        _sizes = _events.Select(EventJson.SizeOf).ToArray();
        _ndjson = System.Text.Encoding.UTF8.GetBytes(string.Join("\n", _events.Select(EventJson.Serialize)));
        _ads = AdsBenchmark.MeasuredTimeline(rate: 100, seconds: 20).Take(Count).Select(t => t.Event).ToArray();
    }

    /// <summary>What <c>KeystonePublisher.PublishAsync</c> does per event before queueing (size already known).</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int ValidateTypedEvent()
    {
        var invalid = 0;
        for (var i = 0; i < _events.Length; i++)
            if (_registry.Validate(_events[i], _limits, _sizes[i]) is not null) invalid++;
        return invalid;
    }

    /// <summary>What ingest does per event: parse the envelope from NDJSON, compact the payload, validate.</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int ParseAndValidateJson() => EventBatchParser.Parse(_ndjson, BodyFormat.Ndjson, _registry, _limits).Events.Count;

    /// <summary>The SDK's serialization of each event (needed for the batch body and its byte limit).</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int SerializeEvent()
    {
        var bytes = 0;
        foreach (var e in _events) bytes += EventJson.SerializeToUtf8(e).Length;
        return bytes;
    }

    /// <summary>What ingest does per event of an SDK batch (binary, decoded): validate, the size limit included.</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int ValidateDecodedEvent() => EventBatchParser.ValidateDecoded(_events, _registry, _limits).Events.Count;

    /// <summary>Ingest's and the topics' partition of an event (its <c>user_id</c>, else its id).</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int PartitionOfEvent()
    {
        var sum = 0;
        foreach (var e in _events) sum += Partitioning.PartitionOf(e, 8);
        return sum;
    }

    /// <summary>The ad operators' reading of each ad event (campaign, session, profile, device, cost).</summary>
    [Benchmark(OperationsPerInvoke = Count)]
    public int ReadAdEvent()
    {
        var read = 0;
        foreach (var e in _ads) if (Keystone.Ads.AdEvents.From(e) is not null) read++;
        return read;
    }
}
