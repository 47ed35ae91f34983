using Keystone.Client.Publishing;
using Keystone.Events;
using Keystone.Ingest;

namespace Keystone.UnitTests.Publishing;

/// <summary>
/// Stands in for the ingest grain: decodes what the publisher sends and accepts it, unless a test scripts a failure,
/// a refusal or a hold-up for a given call.
/// </summary>
internal sealed class FakeTransport : IIngestTransport
{
    private readonly Lock _lock = new();
    private readonly List<IngestRequest> _requests = [];
    private readonly List<KeystoneEvent[]> _batches = [];
    private int _calls;

    /// <summary>Runs before a call is answered, with the 1-based call number; may throw or wait.</summary>
    public Func<int, Task>? Before { get; set; }

    /// <summary>Answers instead of accepting everything, when set.</summary>
    public Func<KeystoneEvent[], IngestResult>? Respond { get; set; }

    public int Calls => Volatile.Read(ref _calls);

    public IReadOnlyList<KeystoneEvent[]> Batches
    {
        get
        {
            lock (_lock) return [.. _batches];
        }
    }

    public IReadOnlyList<IngestRequest> Requests
    {
        get
        {
            lock (_lock) return [.. _requests];
        }
    }

    public async Task<IngestResult> SendAsync(IngestRequest request, CancellationToken cancellationToken)
    {
        var call = Interlocked.Increment(ref _calls);
        if (Before is not null) await Before(call);
        var events = Decode(request);
        lock (_lock)
        {
            // The publisher's body is a pooled buffer, valid until this call returns: keep a copy.
            _requests.Add(request with { Body = request.Body.ToArray() });
            _batches.Add(events);
        }
        return Respond?.Invoke(events) ?? new IngestResult(events.Length, 0, []);
    }

    /// <summary>The request body after decompression, in whatever format the request names.</summary>
    public static byte[] Body(IngestRequest request) =>
        request.Compression == BodyCompression.Lz4 ? Lz4Codec.Decompress(request.Body.Span, 64 << 20) : request.Body.ToArray();

    public static KeystoneEvent[] Decode(IngestRequest request) =>
        request.Format == BodyFormat.Binary
            ? EventBatchCodec.Decode(Body(request))
            : System.Text.Encoding.UTF8.GetString(Body(request))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(EventJson.Parse)
                .ToArray();

    /// <summary>Polls until <paramref name="condition"/> holds; fails the test after <paramref name="timeout"/>.</summary>
    public static async Task Until(Func<bool> condition, TimeSpan? timeout = null, string what = "condition")
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out waiting for {what}.");
            await Task.Delay(5);
        }
    }
}
