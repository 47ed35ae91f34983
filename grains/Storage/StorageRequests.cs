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
/// <remarks>
/// It also keeps the requests still waiting for their answer (<see cref="InFlight"/>): a count says nothing of a
/// request that never came back, and a silo whose start or checkpoint waits on one shows only a timeout elsewhere.
/// </remarks>
public sealed class StorageRequests(TimeProvider? time = null) : IDisposable
{
    public const string MeterName = "Keystone.Storage";

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<string, long> _byOperation = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<long, Pending> _inFlight = new();
    private long _nextId;
    private Meter? _meter;
    private Histogram<double>? _duration;

    private sealed record Pending(long Id, string Operation, string Target, long StartedAt);

    /// <summary>A request sent and not answered yet: what, where, and for how long.</summary>
    public readonly record struct Unanswered(long Id, string Operation, string Target, TimeSpan Waiting);

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
        _meter.CreateObservableGauge("keystone.storage.requests_in_flight", () => _inFlight.Count, "{request}", "Requests sent to Azure Storage and not answered yet.");
        _meter.CreateObservableGauge("keystone.storage.oldest_request_age", () => InFlight().FirstOrDefault().Waiting.TotalSeconds, "s",
            "How long the oldest request to Azure Storage has waited for its answer (0 when none is waiting).");
        _duration = _meter.CreateHistogram<double>("keystone.storage.request.duration", "ms", "Time from sending a request to Azure Storage to its answer, by operation.");
    }

    /// <summary>Requests waiting for their answer, the longest waiting first.</summary>
    public IReadOnlyList<Unanswered> InFlight()
    {
        var now = _time.GetTimestamp();
        return [.. _inFlight.Values.Select(p => new Unanswered(p.Id, p.Operation, p.Target, _time.GetElapsedTime(p.StartedAt, now))).OrderByDescending(u => u.Waiting)];
    }

    /// <summary>The requests that have waited at least <paramref name="atLeast"/>, as "operation target (seconds)", for a
    /// failure message; empty when none.</summary>
    public string DescribeInFlight(TimeSpan atLeast)
    {
        var late = InFlight().Where(u => u.Waiting >= atLeast).Take(10).ToList();
        return late.Count == 0 ? "" : string.Join("; ", late.Select(u => $"{u.Operation} {u.Target} ({u.Waiting.TotalSeconds:0.0} s)"));
    }

    private Pending Begin(string operation, string target)
    {
        var pending = new Pending(Interlocked.Increment(ref _nextId), operation, target, _time.GetTimestamp());
        _inFlight[pending.Id] = pending;
        return pending;
    }

    private void End(Pending pending)
    {
        _inFlight.TryRemove(pending.Id, out _);
        _duration?.Record(_time.GetElapsedTime(pending.StartedAt).TotalMilliseconds, new KeyValuePair<string, object?>("operation", pending.Operation));
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

    // Counts the request and keeps it until its answer; its path names it among the recent writes and while it waits.
    private Pending CountAndTrack(string operation, Uri uri)
    {
        var path = uri.AbsolutePath;
        if (Counted(operation)) Remember(operation, path);
        return Begin(operation, path);
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

    // Per retry: each attempt is a request, counted, and waited on, on its own.
    private sealed class Policy(StorageRequests owner, string service) : HttpPipelinePolicy
    {
        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            var pending = Start(message);
            try
            {
                await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
            }
            finally
            {
                owner.End(pending);
            }
        }

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            var pending = Start(message);
            try
            {
                ProcessNext(message, pipeline);
            }
            finally
            {
                owner.End(pending);
            }
        }

        private Pending Start(HttpMessage message)
        {
            var uri = message.Request.Uri.ToUri();
            return owner.CountAndTrack(Classify(service, message.Request.Method.Method, uri), uri);
        }
    }
}
