using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Ads;

/// <summary>The advertiser's settings, stored apart from the counts: they are written at once, not at the next barrier.</summary>
public sealed class CampaignSettingsState
{
    public string? Name { get; set; }
    public long? BudgetMicros { get; set; }
    public int? CapImpressions { get; set; }
    public TimeSpan? CapWindow { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }

    public CampaignSettings? ToSettings() => Name is null ? null
        : new CampaignSettings(Name, BudgetMicros, CapImpressions is { } n && CapWindow is { } w ? new FrequencyCap(n, w) : null);
}

/// <summary>
/// An ad campaign. Batches come from the ad operators (one call per campaign per delivery) and are applied in memory
/// by <see cref="CampaignLedger"/>, idempotently by log position and event id; the state, with its de-duplication
/// memory, is written at the operators' barriers, when many events are pending, and on deactivation.
/// </summary>
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class AdCampaignGrain(
    [PersistentState("campaign", StorageNames.State)] IPersistentState<AdCampaignState> state,
    [PersistentState("campaign-settings", StorageNames.State)] IPersistentState<CampaignSettingsState> settings,
    IOptions<AdsOptions> options,
    CheckpointMetrics metrics,
    TimeProvider time,
    ILogger<AdCampaignGrain> logger) : Grain, IAdCampaignGrain
{
    private readonly Guid _activation = Guid.NewGuid();
    private CampaignLedger _ledger = null!;
    private StateCheckpointer<AdCampaignState> _checkpointer = null!;
    private readonly PartitionCoverage _coverage = new();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _ledger = NewLedger(state.State);
        _checkpointer = new StateCheckpointer<AdCampaignState>(state, "campaign", metrics, logger, SnapshotStore.PreparesAtSerialization(ServiceProvider));
        return Task.CompletedTask;
    }

    private CampaignLedger NewLedger(AdCampaignState from) =>
        new(this.GetPrimaryKeyString(), options.Value, from) { Settings = settings.State.ToSettings() };

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) =>
        DeactivationWrite.Leave(reason, Flush);

    public async ValueTask<AdApplyResult> Apply(AdBatch batch)
    {
        var (decisions, applied, duplicates) = _ledger.Apply(batch, time.GetUtcNow());
        _coverage.Applied(batch.Partition, batch.Sequence);
        if (applied > 0) _checkpointer.Record(applied);
        if (_checkpointer.PendingEvents >= options.Value.MaxUnflushedEvents) await Flush();
        return new AdApplyResult(_activation, decisions, applied, duplicates);
    }

    // Every partition's operator asks at about the same moment; one write answers them all.
    public async Task<Guid> Checkpoint(int partition, long sequence)
    {
        await _coverage.EnsureAsync(partition, sequence, Write);
        return _activation;
    }

    private Task Flush() => _coverage.WriteAsync(Write);

    private Task Write() => _checkpointer.WriteAsync(() => _ledger.PrepareCheckpoint(time.GetUtcNow()), _ledger.ReleaseCheckpoint);

    public async Task<CampaignView> Configure(CampaignSettings update)
    {
        if (CampaignSettingsRules.Problems(update).FirstOrDefault() is { } problem) throw new ArgumentException(problem, nameof(update));
        var s = settings.State;
        s.Name = update.Name;
        s.BudgetMicros = update.BudgetMicros;
        s.CapImpressions = update.FrequencyCap?.MaxImpressions;
        s.CapWindow = update.FrequencyCap?.Window;
        s.UpdatedAt = time.GetUtcNow();
        await settings.WriteStateAsync();
        _ledger.Settings = s.ToSettings();
        _ledger.OnSettingsChanged();
        return _ledger.View(time.GetUtcNow());
    }

    private bool Known => settings.RecordExists || _ledger.HasActivity;

    public Task<CampaignView?> GetCampaign() => Task.FromResult(Known ? _ledger.View(time.GetUtcNow()) : null);

    public Task<AdSeriesView?> GetSeries(bool hourly) => Task.FromResult(Known ? _ledger.Series(hourly) : null);

    public Task<EligibilityView?> CheckEligibility(string profileId) =>
        Task.FromResult(Known ? _ledger.Eligibility(profileId, time.GetUtcNow()) : null);
}
