using System.Diagnostics.Metrics;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Keystone.Events;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Storage;

namespace Keystone.Storage;

/// <summary>Where snapshot buckets keep their segments, and how many buckets there are.</summary>
public sealed class SnapshotStore(BlobContainerClient container, int buckets, int compactAfter = SnapshotStore.DefaultCompactAfter, TimeSpan? linger = null, long warmBytes = SnapshotStore.DefaultWarmBytes)
{
    public const int DefaultCompactAfter = 16;
    public const long DefaultWarmBytes = 128L << 20;

    /// <summary>What the buckets of this silo may keep of the states of entities that left memory (see <see cref="WarmStates"/>), in all.</summary>
    public long WarmBytes => warmBytes;

    /// <summary>One bucket's share of <see cref="WarmBytes"/>.</summary>
    public long WarmBytesPerBucket => warmBytes / buckets;

    /// <summary>How long an idle bucket waits for more writes before it writes the first: a checkpoint's writes arrive
    /// over a few milliseconds, and waiting for them turns hundreds of requests into one.</summary>
    public TimeSpan Linger { get; } = linger ?? TimeSpan.FromMilliseconds(50);

    public ContainerOnce Container { get; } = new(container);

    /// <summary>Whether grain state goes through <see cref="SnapshotGrainStorage"/> in this silo, which runs each state's
    /// <see cref="SnapshotCapture"/> as it serialises (Orleans' memory storage, the benchmark setting, does not).</summary>
    public static bool PreparesAtSerialization(IServiceProvider services) =>
        services.GetKeyedService<IGrainStorage>(StorageNames.State) is SnapshotGrainStorage;

    public int Buckets => buckets;

    /// <summary>This silo's state writes that got no answer (see <see cref="UnansweredWrites"/>).</summary>
    public UnansweredWrites Unanswered { get; } = new();

    /// <summary>Segments a bucket holds before it may fold them into a new base (see <see cref="SnapshotIndex.ShouldCompact"/>).</summary>
    public int CompactAfter => compactAfter;

    public int BucketOf(string key) => Partitioning.PartitionOf(key, buckets);

    /// <summary>
    /// Writes a new segment, never over an existing one (a second activation of its bucket must fail, not clobber).
    /// The storage client sends a try again when its answer is lost (<c>Keystone:Storage:RequestTryTimeout</c>), and the
    /// second try then finds the segment there: if it holds exactly these bytes, it is this write's own, landed.
    /// </summary>
    public static async Task CreateSegmentAsync(BlobClient blob, byte[] bytes, CancellationToken cancellationToken = default)
    {
        try
        {
            await blob.UploadAsync(BinaryData.FromBytes(bytes), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var there = await blob.DownloadContentAsync(cancellationToken);
            if (!there.Value.Content.ToMemory().Span.SequenceEqual(bytes)) throw;
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _stateReads = new(StringComparer.Ordinal);

    /// <summary>Ranged reads of grain state, by state name: what activations cost, apart from the buckets' own
    /// index loads and compactions (which <c>storage_requests</c> counts with them).</summary>
    public IReadOnlyDictionary<string, long> StateReads() => new SortedDictionary<string, long>(_stateReads, StringComparer.Ordinal);

    private long _compactions, _compactedBytes, _deleted, _deletedBytes;

    /// <summary>Compactions since the silo started, and the bytes of state they rewrote.</summary>
    public (long Count, long Bytes) Compactions => (Interlocked.Read(ref _compactions), Interlocked.Read(ref _compactedBytes));

    /// <summary>Segments deleted since the silo started because nothing live was left in them, and the bytes they held.</summary>
    public (long Count, long Bytes) DeadSegments => (Interlocked.Read(ref _deleted), Interlocked.Read(ref _deletedBytes));

    /// <summary>
    /// Exports the compaction and dead-segment counts next to the storage requests (<c>keystone_snapshot_compactions_total</c>,
    /// <c>keystone_snapshot_compacted_bytes_total</c>, <c>keystone_snapshot_dead_segments_total</c>,
    /// <c>keystone_snapshot_dead_bytes_total</c>): what keeping the buckets small costs and saves.
    /// </summary>
    public void Export(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(StorageRequests.MeterName);
        meter.CreateObservableCounter("keystone.snapshot.compactions", () => Compactions.Count, "{compaction}", "Snapshot buckets folded into a new base.");
        meter.CreateObservableCounter("keystone.snapshot.compacted_bytes", () => Compactions.Bytes, "By", "Bytes of state rewritten by compactions.");
        meter.CreateObservableCounter("keystone.snapshot.dead_segments", () => DeadSegments.Count, "{segment}", "Snapshot segments deleted because every state in them had been written again.");
        meter.CreateObservableCounter("keystone.snapshot.dead_bytes", () => DeadSegments.Bytes, "By", "Bytes of state the deleted dead segments held.");
        meter.CreateObservableCounter("keystone.snapshot.warm_reads", () => Warm.Reads, "{read}", "State reads answered from the buckets' memory of entities that left memory, without a storage request.");
        meter.CreateObservableCounter("keystone.snapshot.unanswered_writes", () => Unanswered.Counts.Unanswered, "{write}", "State writes that got no answer (the bucket's silo died, or the call timed out): each may have been made durable all the same.");
        meter.CreateObservableCounter("keystone.snapshot.unanswered_writes_found_durable", () => Unanswered.Counts.Recognised, "{write}", "Unanswered state writes that the writer's next write found durable, and wrote on top of, rather than taking them for another activation's.");
        meter.CreateObservableGauge("keystone.snapshot.warm_bytes", () => Warm.Bytes, "By", "Bytes of state this silo's buckets keep for entities that left memory.");
    }

    internal void CountCompaction(long bytes)
    {
        Interlocked.Increment(ref _compactions);
        Interlocked.Add(ref _compactedBytes, bytes);
    }

    internal void CountDeadSegment(long bytes)
    {
        Interlocked.Increment(ref _deleted);
        Interlocked.Add(ref _deletedBytes, bytes);
    }

    internal void CountStateRead(string key)
    {
        var bar = key.IndexOf('|', StringComparison.Ordinal);
        _stateReads.AddOrUpdate(bar < 0 ? key : key[..bar], 1, static (_, n) => n + 1);
    }

    private long _warmReads, _warmHeld;

    /// <summary>Activations that found their state in a bucket's memory (no storage request), and the bytes this
    /// silo's buckets hold for that now.</summary>
    public (long Reads, long Bytes) Warm => (Interlocked.Read(ref _warmReads), Interlocked.Read(ref _warmHeld));

    internal void CountWarmRead() => Interlocked.Increment(ref _warmReads);

    internal void WarmHeldChanged(long delta) => Interlocked.Add(ref _warmHeld, delta);

    /// <summary>A bucket's segments sort by name in the order they were written; the suffix says base or delta.</summary>
    public static string SegmentName(int bucket, long segment, bool isBase) => $"{bucket:D4}/{segment:D12}-{(isBase ? 'b' : 'd')}";

    public static string BucketPrefix(int bucket) => $"{bucket:D4}/";

    public static bool TryParseName(string name, out long segment, out bool isBase)
    {
        var leaf = name[(name.LastIndexOf('/') + 1)..];
        isBase = leaf.Length == 14 && leaf[13] == 'b';
        segment = 0;
        return leaf.Length == 14 && leaf[12] == '-' && leaf[13] is 'b' or 'd'
            && long.TryParse(leaf.AsSpan(0, 12), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out segment);
    }

    /// <summary>Every live state of the store (key → bytes): for tools and tests that read snapshots without a silo.</summary>
    public static async Task<Dictionary<string, byte[]>> ReadAllAsync(BlobContainerClient container, CancellationToken cancellationToken = default)
    {
        var buckets = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var blob in container.GetBlobsAsync(cancellationToken: cancellationToken))
            if (TryParseName(blob.Name, out _, out _)) buckets.Add(blob.Name[..(blob.Name.LastIndexOf('/') + 1)]);
        var states = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var bucket in buckets)
            foreach (var record in await ReadBucketAsync(container, bucket, cancellationToken: cancellationToken))
                if (record.Data is { } data) states[record.Key] = data.ToArray(); else states.Remove(record.Key);
        return states;
    }

    /// <summary>
    /// A bucket's records in write order, read from outside its grain, which may be compacting meanwhile: a segment
    /// deleted between the listing and its read was folded into a newer base, so the bucket is listed again.
    /// </summary>
    internal static async Task<List<SnapshotRecord>> ReadBucketAsync(
        BlobContainerClient container, string prefix, Func<Task>? listed = null, CancellationToken cancellationToken = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            var segments = new List<(long Segment, bool IsBase, string Name)>();
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
                if (TryParseName(blob.Name, out var segment, out var isBase)) segments.Add((segment, isBase, blob.Name));
            if (listed is not null) await listed();
            try
            {
                return [.. (await LoadAsync(container, segments, (_, _) => { }, cancellationToken)).Select(r => r.Record)];
            }
            catch (RequestFailedException e) when (e.Status == 404 && attempt < 5)
            {
            }
        }
    }

    /// <summary>The records of a bucket from its newest base on, in write order (older bases and deltas are ignored).</summary>
    internal static async Task<List<(SnapshotRecord Record, int Offset)>> LoadAsync(
        BlobContainerClient container, List<(long Segment, bool IsBase, string Name)> segments,
        Action<(long Segment, bool IsBase, string Name), List<(SnapshotRecord, int)>> applied, CancellationToken cancellationToken)
    {
        segments.Sort((a, b) => a.Segment.CompareTo(b.Segment));
        var start = segments.FindLastIndex(s => s.IsBase);
        var all = new List<(SnapshotRecord, int)>();
        foreach (var s in segments.Skip(Math.Max(0, start)))
        {
            var content = await BlobBytes.DownloadAsync(container.GetBlobClient(s.Name), cancellationToken: cancellationToken);
            var (_, records) = SnapshotSegment.Decode(content, s.Name);
            applied(s, records);
            all.AddRange(records);
        }
        return all;
    }
}

/// <summary>
/// One bucket of grain state. Writes that arrive while a segment is being written are queued and go out together as
/// the next segment (group commit), so a checkpoint of thousands of entities costs about one request per bucket.
/// Reentrant so reads and new writes are served while a segment is on its way; the index knows which states exist,
/// so the activation of a grain that was never written costs no request at all.
/// </summary>
[Reentrant, KeepAlive]
public sealed class SnapshotBucketGrain(SnapshotStore store, ILogger<SnapshotBucketGrain> logger) : Grain, ISnapshotBucketGrain
{
    private readonly SnapshotIndex _index = new();
    // The version each key will have once what is queued is written; the index has what is durable.
    private readonly Dictionary<string, long> _versions = new(StringComparer.Ordinal);
    // Keep: the writer's bytes, to be kept once durable (an entity leaving memory); null for other writes.
    private List<(SnapshotRecord Record, byte[]? Keep, TaskCompletionSource Done)> _queued = [];
    private bool _writing;
    private Task _writer = Task.CompletedTask;
    private long _next = 1;
    private int _bucket;
    private BlobContainerClient _container = null!;
    // The newest segment stays in memory: grains that deactivate and come back soon read it without a request.
    private (long Segment, byte[] Bytes) _recent = (-1, []);
    // And so do the states of entities that left memory, one by one, within the bucket's budget: an idle entity is
    // kept as these bytes rather than as an activation, until it comes back (or is evicted for a newer one).
    private WarmStates _warm = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _bucket = (int)this.GetPrimaryKeyLong();
        _warm = new WarmStates(store.WarmBytesPerBucket, store.WarmHeldChanged);
        _container = await store.Container.ReadyAsync(cancellationToken);
        var segments = new List<(long Segment, bool IsBase, string Name)>();
        await foreach (var blob in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, SnapshotStore.BucketPrefix(_bucket), cancellationToken))
        {
            if (!SnapshotStore.TryParseName(blob.Name, out var segment, out var isBase)) continue;
            segments.Add((segment, isBase, blob.Name));
        }
        await SnapshotStore.LoadAsync(_container, segments, (s, records) => _index.Apply(s.Segment, s.IsBase, records), cancellationToken);
        foreach (var (key, location) in _index.Live) _versions[key] = location.Version;
        if (segments.Count > 0) _next = segments.Max(s => s.Segment) + 1;
        // Left behind by a compaction that stopped before it could delete them, or by a deletion that failed.
        var first = _index.Segments.FirstOrDefault();
        foreach (var stale in segments.Where(s => s.Segment < first)) await DeleteQuietly(stale.Name);
        await DeleteDead();
    }

    // A silo that stops lets the writes already queued finish: they were promised durability.
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try { await _writer.WaitAsync(cancellationToken); }
        catch (Exception e) { logger.LogWarning(e, "Snapshot bucket {Bucket}: queued writes did not finish before deactivation", _bucket); }
        store.WarmHeldChanged(-_warm.Bytes);
    }

    public async Task<SnapshotState?> Read(string key)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (!_index.TryGet(key, out var at)) return null;
            // Taken, not copied: the entity is an activation again, and holds its state as objects.
            if (_warm.TryTake(key, at.Version, out var warm))
            {
                store.CountWarmRead();
                return new SnapshotState(at.Version, warm);
            }
            if (at.Segment == _recent.Segment) return new SnapshotState(at.Version, _recent.Bytes.AsSpan(at.Offset, at.Length).ToArray());
            try
            {
                store.CountStateRead(key);
                var range = await BlobBytes.DownloadAsync(
                    _container.GetBlobClient(SnapshotStore.SegmentName(_bucket, at.Segment, _index.IsBase(at.Segment))), new HttpRange(at.Offset, at.Length));
                return new SnapshotState(at.Version, range);
            }
            catch (RequestFailedException e) when (e.Status == 404 && attempt < 3)
            {
                // A compaction moved the state to a new base, or a newer write made its segment dead and it was deleted,
                // meanwhile: look again.
            }
        }
    }

    public Task<SnapshotWrite> Write(string key, long expectedVersion, Immutable<byte[]> data) => Enqueue(key, expectedVersion, data.Value, keep: false);

    public Task<SnapshotWrite> WriteAndKeep(string key, long expectedVersion, Immutable<byte[]> data) => Enqueue(key, expectedVersion, data.Value, keep: true);

    public Task<SnapshotWrite> Clear(string key, long expectedVersion) => Enqueue(key, expectedVersion, null, keep: false);

    public Task<bool> Keep(string key, long version, Immutable<byte[]> data)
    {
        if (version <= 0 || _versions.GetValueOrDefault(key) != version || !_index.TryGet(key, out var at) || at.Version != version)
            return Task.FromResult(false);
        return Task.FromResult(_warm.Put(key, version, data.Value));
    }

    private async Task<SnapshotWrite> Enqueue(string key, long expectedVersion, byte[]? data, bool keep)
    {
        var current = _versions.GetValueOrDefault(key);
        if (current != expectedVersion) return new SnapshotWrite(false, current);
        var version = current + 1;
        if (data is null) _versions.Remove(key); else _versions[key] = version;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Spelled out: a null byte[] converts to an empty (not a missing) ReadOnlyMemory.
        _queued.Add((new SnapshotRecord(key, version, data is null ? default(ReadOnlyMemory<byte>?) : data), keep ? data : null, done));
        if (!_writing) _writer = WriteQueued();
        try
        {
            await done.Task;
        }
        catch
        {
            // Not durable: the writer's version stays what it was, so its retry (with the old ETag) is accepted.
            if (data is null ? !_versions.ContainsKey(key) : _versions.GetValueOrDefault(key) == version)
            {
                if (current == 0) _versions.Remove(key); else _versions[key] = current;
            }
            throw;
        }
        return new SnapshotWrite(true, data is null ? 0 : version);
    }

    private async Task WriteQueued()
    {
        _writing = true;
        try
        {
            if (store.Linger > TimeSpan.Zero) await Task.Delay(store.Linger);
            while (_queued.Count > 0)
            {
                var group = _queued;
                _queued = [];
                try
                {
                    // A key written twice in one group: its newest record is the one that counts.
                    var records = new Dictionary<string, (SnapshotRecord Record, byte[]? Keep)>(StringComparer.Ordinal);
                    foreach (var (record, keep, _) in group) records[record.Key] = (record, keep);
                    await WriteSegment(records.Values.Select(r => r.Record).ToList(), isBase: false);
                    Remember(records.Values);
                    foreach (var (_, _, done) in group) done.SetResult();
                }
                catch (Exception e)
                {
                    logger.LogWarning(e, "Snapshot bucket {Bucket}: writing {Count} states failed", _bucket, group.Count);
                    foreach (var (_, _, done) in group) done.TrySetException(e);
                    if (e is RequestFailedException { Status: 409 })
                    {
                        // Another activation of this bucket wrote the same segment number: this one's view is stale.
                        DeactivateOnIdle();
                        return;
                    }
                }
                await DeleteDead();
                if (_index.ShouldCompact(store.CompactAfter)) await CompactQuietly();
            }
        }
        finally
        {
            _writing = false;
        }
    }

    private async Task WriteSegment(IReadOnlyCollection<SnapshotRecord> records, bool isBase)
    {
        var segment = _next++;
        var bytes = SnapshotSegment.Encode(records, isBase);
        // Never overwrite: a second activation of the bucket (a cluster partition) must fail, not clobber.
        await SnapshotStore.CreateSegmentAsync(_container.GetBlobClient(SnapshotStore.SegmentName(_bucket, segment, isBase)), bytes);
        _index.Apply(segment, isBase, SnapshotSegment.Decode(bytes, "").Records);
        // A base is the whole bucket: not worth keeping in memory for the few grains that will read it.
        _recent = isBase ? (-1, []) : (segment, bytes);
    }

    // What leaving entities wrote is kept; any other write of a key makes what was kept of it stale.
    private void Remember(IEnumerable<(SnapshotRecord Record, byte[]? Keep)> written)
    {
        foreach (var (record, keep) in written)
        {
            if (keep is not null) _warm.Put(record.Key, record.Version, keep);
            else _warm.Remove(record.Key);
        }
    }

    /// <summary>Folds the newest base and the deltas after it into one new base, then deletes them.</summary>
    private async Task CompactQuietly()
    {
        var previous = _index.Segments.Select(s => (Segment: s, IsBase: _index.IsBase(s))).ToList();
        try
        {
            var contents = new Dictionary<long, byte[]>();
            foreach (var segment in _index.Referenced())
                contents[segment] = segment == _recent.Segment
                    ? _recent.Bytes
                    : await BlobBytes.DownloadAsync(_container.GetBlobClient(SnapshotStore.SegmentName(_bucket, segment, _index.IsBase(segment))));
            var live = _index.Live.Select(kv => new SnapshotRecord(kv.Key, kv.Value.Version, contents[kv.Value.Segment].AsMemory(kv.Value.Offset, kv.Value.Length))).ToList();
            await WriteSegment(live, isBase: true);
            store.CountCompaction(_index.LiveBytes);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Snapshot bucket {Bucket}: compaction failed; the deltas stay and it is tried again after the next write", _bucket);
            return;
        }
        foreach (var (segment, isBase) in previous) await DeleteQuietly(SnapshotStore.SegmentName(_bucket, segment, isBase));
    }

    /// <summary>Deletes the deltas that nothing live points into any more (see <see cref="SnapshotIndex.Dead"/>).</summary>
    private async Task DeleteDead()
    {
        foreach (var segment in _index.Dead())
        {
            var bytes = _index.Forget(segment);
            if (_recent.Segment == segment) _recent = (-1, []);
            // Forgotten first: should the delete fail, the blob is only read again at the bucket's next activation,
            // where its states lose to the newer ones that made it dead, and it is deleted then.
            await DeleteQuietly(SnapshotStore.SegmentName(_bucket, segment, isBase: false));
            store.CountDeadSegment(bytes);
        }
    }

    private async Task DeleteQuietly(string name)
    {
        try
        {
            await _container.GetBlobClient(name).DeleteIfExistsAsync();
        }
        catch (RequestFailedException e)
        {
            // Harmless: segments older than the newest base are ignored when the bucket loads, and deleted then.
            logger.LogDebug(e, "Snapshot bucket {Bucket}: deleting {Segment} failed", _bucket, name);
        }
    }
}

/// <summary>
/// The grain storage provider for all Keystone state: each state goes to its snapshot bucket (a grain) by a stable
/// hash of its name, so states are written many per blob and never-written ones are known without a request.
/// Versions are the ETags: a write whose ETag is stale fails with Orleans' <see cref="InconsistentStateException"/>,
/// as with the blob provider, and the entity grains' checkpointers resolve it the same way.
/// </summary>
public sealed class SnapshotGrainStorage(IGrainFactory grains, SnapshotStore store, IGrainStorageSerializer serializer) : IGrainStorage
{
    public static string Key(string stateName, GrainId grainId) => $"{stateName}|{grainId}";

    // Kept, not asked of the factory per state: Orleans formats the interface's type name on every GetGrain.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, ISnapshotBucketGrain> _buckets = new();

    private ISnapshotBucketGrain Bucket(string key) => _buckets.GetOrAdd(store.BucketOf(key), static (bucket, grains) => grains.GetGrain<ISnapshotBucketGrain>(bucket), grains);

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var stored = await Bucket(key).Read(key);
        if (stored is null)
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            return;
        }
        grainState.State = serializer.Deserialize<T>(new BinaryData(stored.Data)) ?? Activator.CreateInstance<T>();
        grainState.ETag = stored.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var serialized = SnapshotCapture.Serialize(serializer, grainState.State);
        // The serializer's own array, not a copy of it: a campaign's state is hundreds of kilobytes, and every such
        // array is fresh large-object memory that the kernel zeroes page by page.
        var data = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(serialized.ToMemory(), out var whole)
            && whole.Offset == 0 && whole.Count == whole.Array!.Length ? whole.Array : serialized.ToArray();
        var expected = Version(grainState.ETag);
        if (EntityLeaving.Parking)
        {
            // Nothing new to write (see StateCheckpointer): the bucket only keeps these bytes, if they are still the
            // durable version. The state's ETag stays what it is.
            await Bucket(key).Keep(key, expected, new Immutable<byte[]>(data));
            return;
        }
        var bucket = Bucket(key);
        var result = await Write(bucket, key, expected, data);
        if (!result.Written && store.Unanswered.MayBeOwn(key, expected, result.Version, out var sent))
        {
            // This activation's own write may have made the version that refuses it (see UnansweredWrites): only the
            // bytes it sent at that version say so.
            var stored = await bucket.Read(key);
            // The bucket counts a queued write's version before it is durable: the one refusing this write may be the
            // unanswered one, still on its way. No verdict yet: fail as a slow storage would (the caller retries, and
            // the activation stays), and keep the entry for the next write.
            if (stored is null || stored.Version < result.Version)
                throw new TimeoutException($"state '{key}' is at version {result.Version} in its bucket and {stored?.Version ?? 0} in storage: this activation's write that got no answer may still be on its way; not written, try again");
            store.Unanswered.Answered(key);
            if (stored.Version == result.Version && store.Unanswered.IsOwn(sent, stored.Data))
            {
                expected = stored.Version;
                result = await Write(bucket, key, expected, data);
            }
        }
        if (!result.Written) throw Stale(key, result, expected);
        grainState.ETag = result.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    private async Task<SnapshotWrite> Write(ISnapshotBucketGrain bucket, string key, long expected, byte[] data)
    {
        try
        {
            var result = await (EntityLeaving.Active ? bucket.WriteAndKeep(key, expected, new Immutable<byte[]>(data)) : bucket.Write(key, expected, new Immutable<byte[]>(data)));
            if (result.Written) store.Unanswered.Answered(key);
            return result;
        }
        catch
        {
            // No answer is not "not written": the bucket may have made it durable before its silo died or the call
            // timed out. The ETag stays as it was, and the next write finds out.
            store.Unanswered.Unanswered(key, expected, data);
            throw;
        }
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var expected = Version(grainState.ETag);
        var result = await Bucket(key).Clear(key, expected);
        if (!result.Written) throw Stale(key, result, expected);
        grainState.State = Activator.CreateInstance<T>();
        grainState.ETag = null;
        grainState.RecordExists = false;
    }

    // Thrown in the calling grain, so that if it escapes a grain method Orleans deactivates that (stale) activation.
    private static InconsistentStateException Stale(string key, SnapshotWrite result, long expected) =>
        new($"state '{key}' is at version {result.Version}, this activation expected {expected}", result.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), expected.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static long Version(string? etag) => etag is null ? 0 : long.Parse(etag, System.Globalization.CultureInfo.InvariantCulture);
}
