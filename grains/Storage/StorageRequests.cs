using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Azure.Core;
using Azure.Core.Pipeline;

namespace Keystone.Storage;

/// <summary>
/// Counts every request the silo sends to Azure Storage (blob, queue, table), by operation. It is an Azure SDK
/// pipeline policy added to every storage client the silo builds, so a request is counted once per attempt whoever
/// sends it (Orleans' grain storage, streams and clustering as much as our own stores). Storage is for durability,
/// not transport: events per storage request is the number that says whether it stayed off the hot path.
/// Exported as <c>keystone_storage_requests_total{operation}</c>.
/// </summary>
public sealed class StorageRequests : IDisposable
{
    public const string MeterName = "Keystone.Storage";

    private readonly ConcurrentDictionary<string, long> _byOperation = new(StringComparer.Ordinal);
    private Meter? _meter;

    /// <summary>
    /// Exports the counts on a meter of <paramref name="meterFactory"/> (the host's). The counter exists before the
    /// host's container does (storage clients are configured first), so the export is an observable counter over the
    /// same totals, attached once the host is built.
    /// </summary>
    public void Export(IMeterFactory meterFactory)
    {
        if (_meter is not null) return;
        _meter = meterFactory.Create(MeterName);
        _meter.CreateObservableCounter("keystone.storage.requests", Observe, "{request}", "Requests sent to Azure Storage, by operation (service.verb).");
    }

    private IEnumerable<Measurement<long>> Observe()
    {
        foreach (var (operation, count) in _byOperation)
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("operation", operation));
    }

    /// <summary>Puts this counter into a client's pipeline; <paramref name="service"/> is blob, queue or table.</summary>
    public T Attach<T>(T options, string service) where T : ClientOptions
    {
        options.AddPolicy(new Policy(this, service), HttpPipelinePosition.PerRetry);
        return options;
    }

    public long Total => _byOperation.Values.Sum();

    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_byOperation, StringComparer.Ordinal);

    private const int RememberedWrites = 32;
    private readonly ConcurrentQueue<string> _recentWrites = new();

    /// <summary>The last requests that changed storage, as "operation /container/blob": what a count alone cannot say.</summary>
    public IReadOnlyList<string> RecentWrites => [.. _recentWrites];

    /// <summary>Whether an operation changes storage; reads, lists, properties, dequeues and queries do not.</summary>
    public static bool IsWrite(string operation) => operation switch
    {
        "blob.read" or "blob.list" or "blob.properties" or "queue.dequeue" or "queue.properties" or "queue.list" or "table.query"
            or "eventhubs.read" or "eventhubs.properties" => false,
        _ => true,
    };

    // The path is only made for writes: reads are most of the requests.
    private void Count(string operation, Uri uri)
    {
        if (Counted(operation)) Remember(operation, uri.AbsolutePath);
    }

    /// <summary>Counts a request of a client outside the Azure HTTP pipeline (Event Hubs speaks AMQP):
    /// <c>eventhubs.send</c>, <c>eventhubs.read</c>, <c>eventhubs.properties</c>.</summary>
    public void Count(string operation, string target)
    {
        if (Counted(operation)) Remember(operation, target);
    }

    /// <summary>Adds one; says whether the operation is a write worth remembering.</summary>
    private bool Counted(string operation)
    {
        _byOperation.AddOrUpdate(operation, 1, static (_, n) => n + 1);
        return IsWrite(operation);
    }

    // Writes are rare off the fronting log (one per thousands of events), so remembering them costs nothing.
    private void Remember(string operation, string target)
    {
        _recentWrites.Enqueue($"{operation} {target}");
        while (_recentWrites.Count > RememberedWrites) _recentWrites.TryDequeue(out _);
    }

    /// <summary>Names a request after its service and what it does: <c>blob.append</c>, <c>queue.dequeue</c>, ….</summary>
    public static string Classify(string service, string method, Uri uri)
    {
        var comp = QueryValue(uri.Query, "comp");
        var container = QueryValue(uri.Query, "restype") == "container";
        var messages = uri.AbsolutePath.EndsWith("/messages", StringComparison.Ordinal) || uri.AbsolutePath.Contains("/messages/", StringComparison.Ordinal);
        var op = service switch
        {
            "blob" => (method, comp) switch
            {
                ("PUT", "appendblock") => "append",
                ("PUT", "block") or ("PUT", "blocklist") => "put-block",
                ("PUT", null) when container => "create-container",
                ("PUT", null) => "put",
                ("PUT", _) => "set-" + comp,
                ("GET", "list") => "list",
                ("GET", _) => "read",
                ("HEAD", _) => "properties",
                ("DELETE", _) when container => "delete-container",
                ("DELETE", _) => "delete",
                _ => method.ToLowerInvariant(),
            },
            "queue" => (method, messages) switch
            {
                ("POST", true) => "enqueue",
                ("GET", true) => "dequeue",
                ("DELETE", true) => "delete-message",
                ("PUT", true) => "update-message",
                ("GET", false) => comp == "list" ? "list" : "properties",
                _ => method.ToLowerInvariant(),
            },
            "table" => method switch
            {
                "GET" => "query",
                "DELETE" => "delete",
                _ => "write",
            },
            _ => method.ToLowerInvariant(),
        };
        return $"{service}.{op}";
    }

    private static string? QueryValue(string query, string name)
    {
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq > 0 && part.AsSpan(0, eq).Equals(name, StringComparison.OrdinalIgnoreCase)) return part[(eq + 1)..].ToLowerInvariant();
        }
        return null;
    }

    public void Dispose() => _meter?.Dispose();

    private sealed class Policy(StorageRequests owner, string service) : HttpPipelineSynchronousPolicy
    {
        public override void OnSendingRequest(HttpMessage message)
        {
            var uri = message.Request.Uri.ToUri();
            owner.Count(Classify(service, message.Request.Method.Method, uri), uri);
        }
    }
}
