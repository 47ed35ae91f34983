using System.Diagnostics.Metrics;
using Keystone.Ingest;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keystone.Checkpointing;

/// <summary>What the fronting log needs of an Event Hub, and no more: the seam between <see cref="EventHubsFrontingLog"/>
/// (plain logic, unit-tested on an in-memory hub) and the Azure SDK (<c>silo/Streaming/AzureEventHubPartitions.cs</c>).</summary>
public interface IEventHubPartitions
{
    /// <summary>The hub's name, for messages.</summary>
    string Hub { get; }

    Task<IReadOnlyList<string>> GetPartitionIdsAsync(CancellationToken cancellationToken);

    Task<EventHubPartitionState> GetPartitionStateAsync(string partitionId, CancellationToken cancellationToken);

    /// <summary>Sends as many of the leading <paramref name="bodies"/> as fit one batch, as one atomic send, and says
    /// how many that was (at least one: a body that fits no batch throws).</summary>
    Task<int> SendAsync(string partitionId, IReadOnlyList<byte[]> bodies, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="maxCount"/> events from <paramref name="fromSequenceNumber"/> on, in order; empty at
    /// the partition's end.</summary>
    Task<IReadOnlyList<EventHubRecord>> ReadAsync(string partitionId, long fromSequenceNumber, int maxCount, CancellationToken cancellationToken);
}

/// <summary>A partition's retained range. A partition that never held an event reports <c>LastEnqueued = -1</c>.</summary>
public readonly record struct EventHubPartitionState(long BeginningSequenceNumber, long LastEnqueuedSequenceNumber, bool IsEmpty);

public readonly record struct EventHubRecord(long SequenceNumber, byte[] Body);

/// <summary>
/// The fronting log on Azure Event Hubs (the production profile): one hub partition per Keystone partition, one hub
/// event per fronting message, its body the same frame the segment logs write. A message's position is its hub
/// sequence number + 1, so the positions the checkpoint coordinator records <em>are</em> hub offsets: recovery reads
/// the partition from the last completed checkpoint's position, with no Orleans Event Hubs receiver, stream cache or
/// checkpointer involved. The writer learns where the partition ends when it opens and again after any failed send
/// (a send that timed out may have landed), and is the partition's only writer (one grain activation per partition).
/// Events leave the hub by its retention, not by sealing: the retention must outlast the longest operator checkpoint
/// interval plus any outage, and a replay that finds its start expired says so in the log and in <see cref="Expired"/>.
/// Every call to the hub is counted with the storage requests (<c>eventhubs.send</c>, <c>.read</c>, <c>.properties</c>):
/// the sends are the pipeline's durable writes, so events per send is its events per durable write.
/// </summary>
public sealed class EventHubsFrontingLog : IFrontingLog, IDisposable
{
    public const string MeterName = "Keystone.FrontingLog";

    /// <summary>Events asked for per read while replaying.</summary>
    public const int ReadChunk = 256;

    private readonly IEventHubPartitions _hub;
    private readonly int _partitions;
    private readonly ILogger _logger;
    private readonly Keystone.Storage.StorageRequests? _requests;
    private readonly Meter? _meter;
    private IReadOnlyList<string>? _partitionIds;
    private long _expired, _mismatched;

    /// <param name="meterFactory">The host's: exports <see cref="Expired"/> and <see cref="Mismatched"/> as
    /// <c>keystone_fronting_expired_total</c> and <c>keystone_fronting_foreign_total</c> (both should stay 0).</param>
    public EventHubsFrontingLog(IEventHubPartitions hub, int partitions, ILogger? logger = null, Keystone.Storage.StorageRequests? requests = null, IMeterFactory? meterFactory = null)
    {
        _hub = hub;
        _partitions = partitions;
        _logger = logger ?? NullLogger.Instance;
        _requests = requests;
        _meter = meterFactory?.Create(MeterName);
        _meter?.CreateObservableCounter("keystone.fronting.expired", () => Expired, "{message}", "Fronting messages a replay needed that the Event Hub no longer retained: lost.");
        _meter?.CreateObservableCounter("keystone.fronting.foreign", () => Mismatched, "{event}", "Events in a fronting hub partition that another producer wrote.");
    }

    public void Dispose() => _meter?.Dispose();

    /// <summary>Positions a replay needed that the hub no longer retains (lost: the retention is too short).</summary>
    public long Expired => Interlocked.Read(ref _expired);

    /// <summary>Events whose frame gave a position other than their sequence number's: another writer used the partition.</summary>
    public long Mismatched => Interlocked.Read(ref _mismatched);

    /// <summary>The hub partition that holds Keystone partition <paramref name="partition"/> (hub partitions in numeric order).</summary>
    public async Task<string> PartitionIdAsync(int partition, CancellationToken cancellationToken = default)
    {
        if (_partitionIds is null)
        {
            Counted("eventhubs.properties", "");
            var ids = (await _hub.GetPartitionIdsAsync(cancellationToken))
                .OrderBy(id => long.TryParse(id, out var n) ? n : long.MaxValue).ThenBy(id => id, StringComparer.Ordinal).ToArray();
            if (ids.Length < _partitions)
                throw new InvalidOperationException(
                    $"Event Hub '{_hub.Hub}' has {ids.Length} partitions and Keystone:Ingest:Partitions is {_partitions}: the fronting log needs one hub partition per Keystone partition (create the hub with at least {_partitions}).");
            _partitionIds = ids;
        }
        if (partition < 0 || partition >= _partitions) throw new ArgumentOutOfRangeException(nameof(partition), partition, $"partitions are 0 to {_partitions - 1}");
        return _partitionIds[partition];
    }

    public async Task<IFrontingLogWriter> OpenWriterAsync(int partition, CancellationToken cancellationToken = default)
    {
        var id = await PartitionIdAsync(partition, cancellationToken);
        var writer = new Writer(this, id);
        await writer.SyncAsync(cancellationToken);
        return writer;
    }

    public async Task<IReadOnlyList<EventBatch>> ReadAsync(int partition, long from, long to, CancellationToken cancellationToken = default)
    {
        var result = new List<EventBatch>();
        if (to < from) return result;
        var id = await PartitionIdAsync(partition, cancellationToken);
        var state = await PartitionStateAsync(id, cancellationToken);
        var next = Math.Max(from, 1) - 1;
        var end = Math.Min(to - 1, state.LastEnqueuedSequenceNumber);
        if (next < state.BeginningSequenceNumber && next <= end)
        {
            // Not silent: these accepted events cannot be replayed. Counts downstream miss whatever of them had not
            // reached a checkpoint.
            var lost = Math.Min(state.BeginningSequenceNumber - 1, end) - next + 1;
            Interlocked.Add(ref _expired, lost);
            _logger.LogError("Fronting log on Event Hub {Hub}, partition {Partition}: positions {From} to {To} are past the hub's retention and cannot be replayed ({Lost} messages); the retention must outlast the longest operator checkpoint interval plus any outage",
                _hub.Hub, partition, next + 1, next + lost, lost);
            next = state.BeginningSequenceNumber;
        }
        while (next <= end)
        {
            Counted("eventhubs.read", id);
            var records = await _hub.ReadAsync(id, next, (int)Math.Min(ReadChunk, end - next + 1), cancellationToken);
            if (records.Count == 0) break;
            foreach (var record in records)
            {
                if (record.SequenceNumber > end) break;
                var position = record.SequenceNumber + 1;
                var frames = SegmentedFrontingLog.Decode(record.Body, partition, $"{_hub.Hub}/{id}@{record.SequenceNumber}");
                if (frames.Count != 1) throw new InvalidDataException($"fronting log {_hub.Hub}/{id}@{record.SequenceNumber} holds {frames.Count} frames, not one");
                if (frames[0].Position != position && Interlocked.Increment(ref _mismatched) == 1)
                    _logger.LogError("Fronting log on Event Hub {Hub}, partition {Partition}: the event at sequence number {Sequence} was written as position {Written}; another writer uses the partition (the hub's order is taken)",
                        _hub.Hub, partition, record.SequenceNumber, frames[0].Position);
                result.Add(frames[0].Position == position ? frames[0] : frames[0].AtPosition(position));
            }
            next = records[^1].SequenceNumber + 1;
        }
        return result;
    }

    private Task<EventHubPartitionState> PartitionStateAsync(string partitionId, CancellationToken cancellationToken)
    {
        Counted("eventhubs.properties", partitionId);
        return _hub.GetPartitionStateAsync(partitionId, cancellationToken);
    }

    private void Counted(string operation, string partitionId) => _requests?.Count(operation, $"/{_hub.Hub}/{partitionId}");

    private sealed class Writer(EventHubsFrontingLog log, string partitionId) : IFrontingLogWriter
    {
        private bool _unsure;

        public long Last { get; private set; }

        /// <summary>Where the partition ends: the next send gets sequence number <see cref="Last"/>.</summary>
        public async Task SyncAsync(CancellationToken cancellationToken)
        {
            var state = await log.PartitionStateAsync(partitionId, cancellationToken);
            // A partition whose events all expired keeps its numbering: the next event follows the last one enqueued.
            Last = Math.Max(state.LastEnqueuedSequenceNumber, state.BeginningSequenceNumber - 1) + 1;
            _unsure = false;
        }

        public async Task<EventBatch[]> AppendAsync(IReadOnlyList<EventBatch> messages, CancellationToken cancellationToken = default)
        {
            foreach (var m in messages)
                if (m.Segments is { Length: > 0 } || m.IsBarrier) throw new ArgumentException("the fronting log takes plain batches only", nameof(messages));
            if (_unsure) await SyncAsync(cancellationToken);
            var bodies = new byte[messages.Count][];
            for (var k = 0; k < messages.Count; k++)
            {
                bodies[k] = new byte[SegmentedFrontingLog.FrameSize(messages[k])];
                SegmentedFrontingLog.Encode(bodies[k], Last + 1 + k, messages[k]);
            }
            var placed = new EventBatch[messages.Count];
            var i = 0;
            while (i < messages.Count)
            {
                int sent;
                try
                {
                    log.Counted("eventhubs.send", partitionId);
                    sent = await log._hub.SendAsync(partitionId, new ArraySegment<byte[]>(bodies, i, bodies.Length - i), cancellationToken);
                }
                catch
                {
                    // The send may have landed: learn where the partition ends before the next append, so that a
                    // position is never the number of two different events. Frames already encoded for positions
                    // after this one are not sent (the caller answers the producers with the error; they retry).
                    _unsure = true;
                    throw;
                }
                if (sent < 1 || sent > messages.Count - i) throw new InvalidOperationException($"the hub reported {sent} events sent of {messages.Count - i}");
                for (var k = i; k < i + sent; k++) placed[k] = messages[k].AtPosition(Last + 1 + (k - i));
                Last += sent;
                // Frames of the rest were encoded for positions that follow these: still right.
                i += sent;
            }
            return placed;
        }

        // The hub's retention removes events; nothing to delete.
        public Task SealBeforeAsync(long position, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}
