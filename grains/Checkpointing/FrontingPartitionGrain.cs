using Keystone.Archive;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Checkpointing;

/// <summary>
/// One partition's fronting log writer. Reentrant so that appends from concurrent ingest requests queue up while a
/// write is under way and then go out together: one storage request per group, however many requests it answers.
/// Messages are handed to the fronting stream in position order after they are durable.
/// Where the lake is the sealed log (<see cref="CheckpointOptions.LakeFromLog"/>), it also closes its open segment every
/// <see cref="ArchiveOptions.SealInterval"/> (or at <see cref="SealedLogLake.SealAtBytes"/>) and writes each closed
/// segment to the lake, off its own turn so that appends do not wait behind the compression.
/// </summary>
[Reentrant]
public sealed class FrontingPartitionGrain(
    IFrontingLog log,
    SealedLogLake lake,
    LocalFrontingPartitions local,
    IOptions<CheckpointOptions> checkpoints,
    IOptions<ArchiveOptions> archive,
    IOptions<IngestOptions> ingest,
    ArchiveStore store,
    TimeProvider time,
    ILogger<FrontingPartitionGrain> logger) : Grain, IFrontingPartitionGrain
{
    private List<(EventBatch[] Messages, TaskCompletionSource Done)> _queued = [];
    private bool _writing;
    private IFrontingLogWriter _writer = null!;
    private IAsyncStream<EventBatch> _stream = null!;
    private int _partition;

    private static readonly TimeSpan InitialSealDelay = TimeSpan.FromSeconds(15);

    // Set where the lake is made of this log's segments.
    private ISegmentedLogWriter? _sealable;
    private ClockSkew _clockSkew = null!;
    private bool _rollDue;
    private Task _sealing = Task.CompletedTask;
    // One seal at a time: the event ids of the segment being sealed.
    private readonly HashSet<Guid> _seen = [];
    private readonly HourManifests _manifests = new();
    private readonly Dictionary<string, (ArchiveBlob Blob, DateTimeOffset Written)> _lakeBlobs = new(StringComparer.Ordinal);
    private Task? _listing;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = (int)this.GetPrimaryKeyLong();
        _writer = await log.OpenWriterAsync(_partition, cancellationToken);
        _stream = this.GetStreamProvider(StreamNames.Provider).GetStream<EventBatch>(StreamId.Create(StreamNames.Fronting, StreamNames.PartitionKey(_partition)));
        if (checkpoints.Value.LakeFromLog && archive.Value.Enabled && _writer is ISegmentedLogWriter segmented)
        {
            _sealable = segmented;
            segmented.ArchiveRequired = true;
            lake.CountAlreadySealed(segmented.Archived.Count);
            _clockSkew = new ClockSkew(ingest.Value.MaxClockSkew);
            local.Add(_partition, this.AsReference<IFrontingPartitionGrain>());
            var every = archive.Value.SealInterval;
            this.RegisterGrainTimer(_ => Tick(), new GrainTimerCreationOptions(every, every) { Interleave = true });
            // A writer opens a fresh segment: what an earlier activation left (a crash, a stop) is all closed, and goes
            // once, at most 15 s after the start: not while a restarted silo replays and warms up (a kill -9 at 10,000
            // events/s was 1.2-1.8 s slower to answer and to count exactly with the seal at once).
            var leftovers = every < InitialSealDelay ? every : InitialSealDelay;
            this.RegisterGrainTimer(_ =>
            {
                StartSealing();
                return Task.CompletedTask;
            }, new GrainTimerCreationOptions(leftovers, Timeout.InfiniteTimeSpan) { Interleave = true });
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_sealable is null) return;
        local.Remove(_partition, this.AsReference<IFrontingPartitionGrain>());
        try
        {
            await FlushToLake().WaitAsync(cancellationToken);
        }
        catch (Exception e)
        {
            // Nothing is lost: the segments stay in the log, and the next activation seals them.
            logger.LogWarning(e, "Lake: partition {Partition} could not seal its log segments as it deactivated; the next activation will", _partition);
        }
    }

    public Task Append(EventBatch[] messages)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queued.Add((messages, done));
        if (!_writing) _ = WriteQueued();
        return done.Task;
    }

    public Task<long> Head() => Task.FromResult(_writer.Last);

    public Task SealBefore(long position) => _writer.SealBeforeAsync(position);

    private async Task WriteQueued()
    {
        _writing = true;
        try
        {
            while (_queued.Count > 0)
            {
                var group = _queued;
                _queued = [];
                try
                {
                    var placed = await _writer.AppendAsync([.. group.SelectMany(g => g.Messages)]);
                    foreach (var message in placed) await _stream.OnNextAsync(message);
                    foreach (var (_, done) in group) done.SetResult();
                }
                catch (Exception e)
                {
                    // Not acknowledged: the producers retry. What did reach the log is routed when the router next
                    // reads past it (a gap in positions) and de-duplicated by event id. A full queue is back-pressure,
                    // expected under overload, not a failure.
                    if (e is Keystone.Ingest.PipelineBusyException)
                        logger.LogInformation("Fronting partition {Partition}: {Count} requests refused, the pipeline is busy ({Reason}); the producers retry", _partition, group.Count, e.Message);
                    else
                        logger.LogWarning(e, "Fronting partition {Partition}: appending {Count} requests failed", _partition, group.Count);
                    foreach (var (_, done) in group) done.SetException(e);
                }
                // Between groups, never during an append: the segment is not in use.
                if (_sealable is { } s && (_rollDue || s.OpenBytes >= SealedLogLake.SealAtBytes)) Roll();
            }
        }
        finally
        {
            _writing = false;
        }
    }

    private Task Tick()
    {
        if (_writing) _rollDue = true;
        else Roll();
        // Also when nothing was open: a seal that failed is tried again.
        StartSealing();
        return Task.CompletedTask;
    }

    private void Roll()
    {
        _rollDue = false;
        if (_sealable!.Roll()) StartSealing();
    }

    private void StartSealing()
    {
        if (_sealable is not null && _sealing.IsCompleted) _sealing = SealClosed();
    }

    private async Task SealClosed()
    {
        var sealable = _sealable!;
        while (sealable.Unarchived is { Count: > 0 } closed)
        {
            var first = closed[0];
            try
            {
                // Off this grain's turns, which are the partition's appends: opened and uploaded on the pool, read and
                // compressed on the lake's low-priority thread (SealedLogLake.GroupInTurnAsync).
                var blobs = await Task.Run(() => Seal(sealable, first));
                await sealable.MarkArchivedAsync(first);
                foreach (var blob in blobs) Remember(blob);
            }
            catch (Exception e)
            {
                lake.CountFailure();
                logger.LogWarning(e, "Lake: writing fronting log segment {Segment} of partition {Partition} to the lake failed; it stays in the log and is tried again at the next seal", first, _partition);
                return;
            }
        }
    }

    // A seal takes seconds; one stuck on a storage request that never answers would hold every later seal of the
    // partition behind it (one at a time), so it is given up after this and tried again at the next tick.
    private static readonly TimeSpan SealTimeout = TimeSpan.FromMinutes(2);

    // Read frame by frame: a segment of up to 8 MiB is never in memory whole.
    private async Task<IReadOnlyList<ArchiveBlob>> Seal(ISegmentedLogWriter sealable, long first)
    {
        using var timeout = new CancellationTokenSource(SealTimeout);
        if (await sealable.OpenSegmentAsync(first, timeout.Token) is not { } segment) return [];
        await using (segment)
            return await lake.SealAsync(_partition, first, segment, sealable.TornTailPossible, _clockSkew, _seen, _manifests, timeout.Token);
    }

    private void Remember(ArchiveBlob blob)
    {
        _lakeBlobs[blob.Name] = (blob, time.GetUtcNow());
        Prune();
    }

    // The blobs written in the last two days, whatever hour of event time they hold (a few thousand per partition).
    private void Prune()
    {
        var cutoff = time.GetUtcNow().AddDays(-2);
        foreach (var stale in _lakeBlobs.Where(kv => kv.Value.Written < cutoff).Select(kv => kv.Key).ToList()) _lakeBlobs.Remove(stale);
    }

    public async Task FlushToLake()
    {
        if (_sealable is null) return;
        if (_writing) _rollDue = true;
        else Roll();
        await _sealing;
        StartSealing();
        await _sealing;
    }

    public async Task<IReadOnlyList<ArchiveBlob>> GetLakeBlobs()
    {
        if (_sealable is null) return [];
        try
        {
            await (_listing ??= ListLake());
        }
        catch
        {
            _listing = null;
            throw;
        }
        Prune();
        return [.. _lakeBlobs.Values.Select(v => v.Blob).OrderBy(b => b.Name, StringComparer.Ordinal)];
    }

    // Listed once per activation (the hours of the last three days of event time) on top of this grain's own seals, which
    // the listing does not replace.
    private async Task ListLake()
    {
        var today = time.GetUtcNow().UtcDateTime.Date;
        for (var day = today.AddDays(-2); day <= today; day = day.AddDays(1))
            foreach (var (blob, written) in await store.ListPartitionAsync($"archive/{day:yyyy/MM/dd}/", _partition))
                if (blob.Name.Contains($"/p{_partition}-s", StringComparison.Ordinal)) _lakeBlobs.TryAdd(blob.Name, (blob, written));
    }
}
