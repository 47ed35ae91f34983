using Keystone.Aggregation;
using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Pipeline;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Ads;

/// <summary>
/// The ad operator of one partition of <see cref="AdTopics.Input"/>: logs each delivery (see
/// <see cref="LoggedOperatorGrain{TState}"/>), sends each campaign its events in one call, and writes the verdicts to
/// the sinks: <c>ads-billing</c> (billable events only), <c>ads-analytics</c> (every event, with its validity) and
/// <c>ads-fraud-alerts</c> (invalid clicks, with the reason). Sink segments are named after the log position, so a
/// replayed delivery does not reach a sink's consumers twice. The billable events and the invalid clicks also go to
/// the committed exports of the same names (<see cref="AdExports"/>), at each checkpoint, once the campaigns that
/// decided them are durable.
/// </summary>
[ImplicitStreamSubscription(AdTopics.Input)]
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class AdsOperatorGrain(
    [PersistentState("ads-operator", StorageNames.State)] IPersistentState<LoggedOperatorState> state,
    IOperatorLogFactory logs,
    IOptions<AdsOptions> options,
    IOptions<IngestOptions> ingestOptions,
    CheckpointMetrics checkpointMetrics,
    PipelineMetrics pipelineMetrics,
    ExportStore exports,
    TimeProvider time,
    ILogger<AdsOperatorGrain> logger)
    : LoggedOperatorGrain<LoggedOperatorState>(state, logs, ingestOptions.Value, checkpointMetrics, pipelineMetrics, time, logger), IAdsOperatorGrain
{
    private readonly AdsOptions _options = options.Value;
    private readonly ClockSkew _clockSkew = new(ingestOptions.Value.MaxClockSkew);
    private readonly PipelineMetrics _metrics = pipelineMetrics;
    private readonly Dictionary<string, LatencyHistogram> _countedLag = new(StringComparer.Ordinal);
    private readonly LatencyHistogram _dispatch = new();
    private long _events, _billable, _invalid, _duplicates, _exported;
    private readonly CommittedExport<BillingRecord> _billingExport = new(options.Value.DedupeHorizon, options.Value.DedupeCapacity, r => r.EventId);
    private readonly CommittedExport<FraudAlertRecord> _fraudExport = new(options.Value.DedupeHorizon, options.Value.DedupeCapacity, r => r.EventId);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // What the exports released before this activation, so that the replay after a crash re-sends none of it.
        // Read before the base class replays its own log (with Azure Queue or Event Hubs streams), which offers again.
        var partition = int.Parse(this.GetPrimaryKeyString(), System.Globalization.CultureInfo.InvariantCulture);
        var now = Time.GetUtcNow();
        var since = now - _options.DedupeHorizon;
        _billingExport.Restore(await exports.ReleasedAsync(AdExports.Billing, partition, since, now, cancellationToken));
        _fraudExport.Restore(await exports.ReleasedAsync(AdExports.FraudAlerts, partition, since, now, cancellationToken));
        await base.OnActivateAsync(cancellationToken);
    }

    protected override string InputTopic => AdTopics.Input;
    // Campaigns recognise a replayed batch by its log position: one event at a time under the same position would be
    // taken for a replay. A failing delivery is retried until it succeeds instead.
    protected override bool CanIsolate => false;
    protected override string LogName => "ads";
    protected override TimeSpan CheckpointInterval => _options.CheckpointInterval;
    protected override int CheckpointConcurrency => _options.CheckpointConcurrency;
    protected override int DispatchConcurrency => _options.DispatchConcurrency;

    protected override async Task Process(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt)
    {
        // Series minutes and hours, pacing and the click rules all run on event time: a clock far ahead counts at arrival.
        events = _clockSkew.Correct(events, arrivedAt, out var skewed);
        if (skewed > 0) _metrics.ClockSkewed(LogName, skewed);
        var byCampaign = new Dictionary<string, List<AdEvent>>(StringComparer.Ordinal);
        var originals = new Dictionary<Guid, (KeystoneEvent Event, AdEvent Ad)>(events.Length);
        foreach (var e in events)
        {
            if (AdEvents.From(e) is not { } ad)
            {
                logger.LogWarning("Ads operator {Partition}: {Type} event {Id} has no campaign or ad session; not counted", Partition, e.EventType, e.EventId);
                continue;
            }
            originals[e.EventId] = (e, ad);
            if (!byCampaign.TryGetValue(ad.CampaignId, out var list)) byCampaign[ad.CampaignId] = list = [];
            list.Add(ad);
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var results = await ForEach(byCampaign, (campaign, list) => GrainRefs.Get<IAdCampaignGrain>(GrainFactory, campaign).Apply(new AdBatch(Partition, sequence, [.. list])));
        _dispatch.Record((long)System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        var now = Time.GetUtcNow();

        var billing = new List<KeystoneEvent>();
        var analytics = new List<KeystoneEvent>();
        var fraud = new List<KeystoneEvent>();
        foreach (var (campaign, r) in results)
        {
            Touch('c', campaign, r.ActivationId);
            _events += r.Applied;
            _duplicates += r.Duplicates;
            foreach (var d in r.Decisions)
            {
                var (e, ad) = originals[d.EventId];
                if (d.Billable) _billingExport.Offer(AdExports.Bill(ad, e.EventType, Partition));
                if (d.InvalidReason is { } reason) _fraudExport.Offer(AdExports.Alert(ad, e.EventType, reason, Partition));
                // The topics had it when it was applied.
                if (d.Repeat) continue;
                if (r.Applied > 0) Lag(e.EventType).Record((now.UtcTicks - e.Timestamp.UtcTicks) / TimeSpan.TicksPerMicrosecond);
                var valid = d.InvalidReason is null;
                var metadata = e.Metadata.With("ad_valid", valid ? "true" : "false");
                if (!valid) metadata = metadata.With("invalid_reason", d.InvalidReason!);
                var tagged = e with { Metadata = metadata };
                analytics.Add(tagged);
                if (!valid)
                {
                    fraud.Add(tagged);
                    if (r.Applied > 0) _invalid++;
                }
                if (d.Billable)
                {
                    billing.Add(tagged);
                    if (r.Applied > 0) _billable++;
                }
            }
        }

        // Billing first: it is what money depends on.
        await Append(_options.BillingTopic, "HIGH", billing, now, sequence);
        await Append(_options.FraudTopic, "HIGH", fraud, now, sequence);
        await Append(_options.AnalyticsTopic, "NORMAL", analytics, now, sequence);
    }

    private LatencyHistogram Lag(string type)
    {
        if (!_countedLag.TryGetValue(type, out var h)) _countedLag[type] = h = new LatencyHistogram();
        return h;
    }

    protected override Func<Task>? SealOutputs()
    {
        // Files are named after the seal, so a batch written again after a failed write keeps its name.
        var at = Time.GetUtcNow();
        var billing = _billingExport.Seal(at);
        var fraud = _fraudExport.Seal(at);
        if (billing.Count == 0 && fraud.Count == 0) return null;
        return async () =>
        {
            await Write(AdExports.Billing, _billingExport, billing);
            await Write(AdExports.FraudAlerts, _fraudExport, fraud);
        };
    }

    private async Task Write<TRecord>(string sink, CommittedExport<TRecord> export, IReadOnlyList<ExportBatch<TRecord>> batches) where TRecord : IExportRecord
    {
        foreach (var batch in batches)
        {
            export.Writing(batch);
            await exports.WriteAsync(sink, Partition, batch.Records, batch.At);
            export.Released(batch, Time.GetUtcNow());
            _exported += batch.Records.Count;
        }
    }

    protected override Task<Guid> CheckpointEntity(string key, long covered) => GrainRefs.Get<IAdCampaignGrain>(GrainFactory, key[2..]).Checkpoint(Partition, covered);

    public Task CheckpointNow() => Checkpoint();

    public Task<AdsOperatorStats> GetStats() => Task.FromResult(new AdsOperatorStats(
        Partition, S.NextSequence, S.CheckpointedSequence, _events, _billable, _invalid, _duplicates + SegmentDuplicates, Checkpoints, Replayed,
        _countedLag.ToDictionary(p => p.Key, p => p.Value.Snapshot(), StringComparer.Ordinal), LogAppendLatency.Snapshot(), _dispatch.Snapshot(),
        _exported, _billingExport.Pending + _fraudExport.Pending));

    public Task ResetStats()
    {
        _events = _billable = _invalid = _duplicates = _exported = 0;
        SegmentDuplicates = Checkpoints = Replayed = 0;
        _countedLag.Clear();
        _dispatch.Clear();
        LogAppendLatency.Clear();
        return Task.CompletedTask;
    }
}
