using System.ComponentModel.DataAnnotations;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Storage;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;
using Keystone.Checkpointing;
using System.Text.Json.Serialization;

namespace Keystone.Archive;

/// <summary>The data-lake archive. Section <c>Keystone:Archive</c>.</summary>
public sealed class ArchiveOptions
{
    public const string Section = "Keystone:Archive";

    /// <summary>Off: the archive topic is still counted by its taps, but nothing is written to the lake.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A blob that reaches this many compressed bytes is closed and the next part started.</summary>
    [Range(1024, 100L * 1024 * 1024 * 1024)]
    public long MaxBlobBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>How often each writer rewrites the manifests of the hours it touched.</summary>
    public TimeSpan ManifestInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Where the lake is the sealed fronting log (File and Blob logs): how often each partition's open log
    /// segment is closed and written to the lake. The lake is this far behind ingest, at most.</summary>
    public TimeSpan SealInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest range one replay may cover.</summary>
    public TimeSpan MaxReplayRange { get; set; } = TimeSpan.FromDays(7);
}

public sealed class ArchiveWriterState
{
    /// <summary>Blob name → events and compressed bytes written to it.</summary>
    public Dictionary<string, ArchiveBlob> Blobs { get; set; } = [];

    /// <summary>Hour prefix → the part currently appended to.</summary>
    public Dictionary<string, int> CurrentPart { get; set; } = [];

    [JsonConverter(typeof(GuidListBase64Converter))]
    public List<Guid> RecentSegments { get; set; } = [];
}

/// <summary>
/// Where the lake is the sealed fronting log (<see cref="CheckpointOptions.LakeFromLog"/>: the File and Blob logs, the
/// default), only acknowledges the archive topic's barriers and answers <see cref="GetBlobs"/> from the partition's log
/// writer: <see cref="SealedLogLake"/> writes the lake. Otherwise (the Event Hubs log, durable streams):
/// writes one partition of the archive topic to the lake: each delivery is appended, grouped by the hour of its
/// events' time, as one gzip member to that hour's current blob, before the delivery is acknowledged — so nothing
/// acknowledged is missing from the lake. Blobs roll over at <see cref="ArchiveOptions.MaxBlobBytes"/>; the per-blob
/// counts go to a manifest per hour and partition. A message redelivered after a crash may be appended twice: the
/// archive is at-least-once, and replays are de-duplicated downstream by event id. An event stamped further ahead of its
/// ingest time than <see cref="IngestOptions.MaxClockSkew"/> is stored as the operators use it (see <see cref="ClockSkew"/>):
/// under the hour it arrived, its own timestamp kept in <c>metadata.original_timestamp</c>.
/// </summary>
[ImplicitStreamSubscription(ArchiveTopics.Input)]
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class ArchiveWriterGrain(
    [PersistentState("archive-writer", StorageNames.State)] IPersistentState<ArchiveWriterState> state,
    ArchiveStore store,
    IOptions<ArchiveOptions> options,
    IOptions<IngestOptions> ingestOptions,
    IOptions<CheckpointOptions> checkpoints,
    LocalArchiveWriters local,
    IClusterMembershipService membership,
    ILocalSiloDetails silo,
    TimeProvider time,
    ILogger<ArchiveWriterGrain> logger)
    : Grain, IArchiveWriterGrain, IStreamSubscriptionObserver, IAsyncBatchObserver<EventBatch>
{
    private const int RememberedSegments = 4096;
    private readonly HashSet<string> _dirtyHours = new(StringComparer.Ordinal);
    private readonly ClockSkew _clockSkew = new(ingestOptions.Value.MaxClockSkew);
    private RecentIds<Guid> _segments = null!;
    private int _partition;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        _segments = new RecentIds<Guid>(RememberedSegments);
        // Where the lake is the sealed fronting log, this writer only acknowledges barriers.
        if (LakeFromLog) return Task.CompletedTask;
        local.Add(_partition, this.AsReference<IArchiveWriterGrain>());
        foreach (var id in state.State.RecentSegments) _segments.TryAdd(id);
        var every = options.Value.ManifestInterval;
        this.RegisterGrainTimer(FlushManifests, new GrainTimerCreationOptions(every, every));
        return Task.CompletedTask;
    }

    private bool LakeFromLog => checkpoints.Value.LakeFromLog;

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (LakeFromLog) return;
        local.Remove(_partition, this.AsReference<IArchiveWriterGrain>());
        // A stopping silo flushed this writer before deactivating grains. When no other silo stays, what came after is
        // not acknowledged and the fronting log replays it at the restart; written now, without the state that records
        // it (the snapshot buckets are deactivating with this silo), it would log errors and be archived twice. When
        // other silos stay, they hold the buckets and the next activation: write, or the next barrier passes it by.
        if (reason.ReasonCode == DeactivationReasonCode.ShuttingDown && checkpoints.Value.Logging && !OtherSilosStay()) return;
        await Flush();
    }

    private bool OtherSilosStay() =>
        membership.OthersActive(silo.SiloAddress);

    public async Task Flush()
    {
        if (LakeFromLog) return;
        if (_pending.Count > 0) await WritePending();
        await FlushManifests();
    }

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<EventBatch>().ResumeAsync(this);

    public Task OnErrorAsync(Exception ex)
    {
        logger.LogWarning(ex, "Stream error on archive partition {Partition}", _partition);
        return Task.CompletedTask;
    }

    // With the fronting log, deliveries are compressed here as they arrive and appended at the next checkpoint barrier
    // (or when this many events are waiting): one append per hour and barrier instead of one per delivery. A crash loses
    // only what the fronting log still holds, since the barrier is acknowledged after the write.
    private const int MaxPendingEvents = 50_000;
    private readonly SortedDictionary<DateTimeOffset, CompressedLines> _pending = [];
    private readonly List<Guid> _pendingSegments = [];
    private readonly HashSet<Guid> _pendingSet = [];

    public async Task OnNextAsync(IList<SequentialItem<EventBatch>> items)
    {
        if (LakeFromLog)
        {
            // The log's segments are the lake: what came before a barrier is durable already.
            foreach (var item in items)
                if (item.Item.IsBarrier) GrainFactory.GetGrain<ICheckpointCoordinatorGrain>(0).Ack(item.Item.Barrier, _partition, ArchiveTopics.Input).Ignore();
            return;
        }
        Gather(items);
        if (checkpoints.Value.Logging)
        {
            var barriers = items.Where(i => i.Item.IsBarrier).Select(i => i.Item.Barrier).ToList();
            if (barriers.Count == 0 && _pending.Values.Sum(l => l.Events) < MaxPendingEvents) return;
            await WritePending();
            // Everything before these barriers is in the lake now (or the lake is off).
            var coordinator = GrainFactory.GetGrain<ICheckpointCoordinatorGrain>(0);
            foreach (var n in barriers) coordinator.Ack(n, _partition, ArchiveTopics.Input).Ignore();
            return;
        }
        try
        {
            await WritePending();
        }
        finally
        {
            // Written or not: a redelivery must find these segments unknown unless they are in the lake, and must not
            // find its events already waiting here.
            DropPending();
        }
    }

    /// <summary>
    /// Appends what is pending, hour by hour and member by member. A member is dropped once it is appended, so a
    /// failure part-way retries only the rest at the next barrier (this writer appends nothing twice; a crash in between
    /// still can, which the archive's at-least-once contract allows).
    /// </summary>
    private async Task WritePending()
    {
        var s = state.State;
        foreach (var (hour, lines) in _pending)
        {
            var prefix = ArchiveStore.HourPrefix(hour);
            lines.Seal();
            while (lines.Sealed.Count > 0)
            {
                var chunk = lines.Sealed[0];
                var part = s.CurrentPart.GetValueOrDefault(prefix);
                var name = ArchiveStore.BlobName(hour, _partition, part);
                if (s.Blobs.TryGetValue(name, out var current) && current.Bytes >= options.Value.MaxBlobBytes)
                {
                    s.CurrentPart[prefix] = ++part;
                    name = ArchiveStore.BlobName(hour, _partition, part);
                }
                var bytes = await store.AppendAsync(name, chunk);
                lines.Appended();
                var before = s.Blobs.GetValueOrDefault(name) ?? new ArchiveBlob(name, 0, 0);
                s.Blobs[name] = before with { Events = before.Events + chunk.Events, Bytes = before.Bytes + bytes };
                _dirtyHours.Add(prefix);
            }
        }
        foreach (var id in _pendingSegments) _segments.TryAdd(id);
        DropPending();
    }

    private void DropPending()
    {
        foreach (var lines in _pending.Values) lines.Dispose();
        _pending.Clear();
        _pendingSegments.Clear();
        _pendingSet.Clear();
    }

    /// <summary>Compresses the fresh events of a delivery into their hours; their segments are remembered once written.</summary>
    private void Gather(IList<SequentialItem<EventBatch>> items)
    {
        if (!options.Value.Enabled) return;
        foreach (var item in items)
        {
            var batch = item.Item;
            // A future hour filled early by one wrong clock would surprise whoever reads the lake by hour.
            var arrivedAt = ClockSkew.ArrivalOf([batch], time.GetUtcNow());
            foreach (var (id, start, count) in batch.SegmentRanges())
            {
                if (_segments.Contains(id) || !_pendingSet.Add(id)) continue;
                _pendingSegments.Add(id);
                var events = batch.Events;
                for (var i = start; i < start + count; i++)
                {
                    var e = _clockSkew.Correct(events[i], arrivedAt);
                    var hour = ArchiveStore.HourOf(e.Timestamp);
                    if (!_pending.TryGetValue(hour, out var lines)) _pending[hour] = lines = new CompressedLines(ArchiveStore.MaxRawBytesPerBlock);
                    lines.Add(e);
                }
            }
        }
    }

    public Task<IReadOnlyList<ArchiveBlob>> GetBlobs() => LakeFromLog
        ? GrainFactory.GetGrain<IFrontingPartitionGrain>(_partition).GetLakeBlobs()
        : Task.FromResult<IReadOnlyList<ArchiveBlob>>([.. state.State.Blobs.Values.OrderBy(b => b.Name, StringComparer.Ordinal)]);

    public async Task FlushManifests()
    {
        if (_dirtyHours.Count == 0 || LakeFromLog) return;
        var hours = _dirtyHours.ToList();
        _dirtyHours.Clear();
        var s = state.State;
        // Keep the state to the last two days of blobs; older hours' manifests are final.
        var cutoff = ArchiveStore.HourPrefix(DateTimeOffset.UtcNow.AddDays(-2));
        foreach (var stale in s.Blobs.Keys.Where(k => string.CompareOrdinal(k, cutoff) < 0).ToList()) s.Blobs.Remove(stale);
        foreach (var stale in s.CurrentPart.Keys.Where(k => string.CompareOrdinal(k, cutoff) < 0).ToList()) s.CurrentPart.Remove(stale);
        s.RecentSegments = [.. _segments.InOrder().TakeLast(RememberedSegments)];
        try
        {
            foreach (var prefix in hours)
                await store.WriteManifestAsync($"{prefix}manifest-p{_partition}.json", [.. s.Blobs.Values.Where(b => b.Name.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(b => b.Name, StringComparer.Ordinal)]);
            await state.WriteStateAsync();
        }
        catch
        {
            _dirtyHours.UnionWith(hours);
            throw;
        }
    }
}
