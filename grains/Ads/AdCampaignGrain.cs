using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
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
    private StateCheckpointer<AdCampaignState, AdBatch> _checkpointer = null!;

    // Partition → log position up to which what this campaign applied is in storage.
    private Dictionary<int, long> _durable = [];
    private Task? _writing;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _ledger = NewLedger(state.State);
        _checkpointer = new StateCheckpointer<AdCampaignState, AdBatch>(state, "campaign", metrics, logger);
        _durable = new Dictionary<int, long>(state.State.Applied);
        return Task.CompletedTask;
    }

    private CampaignLedger NewLedger(AdCampaignState from) =>
        new(this.GetPrimaryKeyString(), options.Value, from) { Settings = settings.State.ToSettings() };

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Flush();

    public async Task<AdApplyResult> Apply(AdBatch batch)
    {
        var (decisions, applied, duplicates) = _ledger.Apply(batch, time.GetUtcNow());
        if (applied > 0) _checkpointer.Record(batch, applied);
        if (_checkpointer.PendingEvents >= options.Value.MaxUnflushedEvents) await Flush();
        return new AdApplyResult(_activation, decisions, applied, duplicates);
    }

    public async Task Checkpoint(int partition, long sequence)
    {
        // Eight operators ask at about the same moment; a write started after what they need was applied covers
        // all of them, so wait for the one in flight and look again before writing.
        while (_durable.GetValueOrDefault(partition, -1) < Math.Min(sequence, _ledger.State.Applied.GetValueOrDefault(partition, -1)))
        {
            if (_writing is { } inFlight) await inFlight;
            else await Flush();
        }
    }

    private async Task Flush()
    {
        while (_writing is { } inFlight) await inFlight;
        var write = Write();
        _writing = write;
        try { await write; }
        finally { if (_writing == write) _writing = null; }
    }

    private async Task Write()
    {
        Dictionary<int, long>? written = null;
        if (!_checkpointer.Dirty)
        {
            // Nothing recorded since the last write: what moved the positions changed nothing (all repeats).
            _durable = new Dictionary<int, long>(_ledger.State.Applied);
            return;
        }
        await _checkpointer.WriteAsync(() =>
        {
            _ledger.PrepareCheckpoint(time.GetUtcNow());
            written = new Dictionary<int, long>(_ledger.State.Applied);
        }, fresh =>
        {
            _ledger = NewLedger(fresh);
            var now = time.GetUtcNow();
            return batch => _ledger.Apply(batch, now);
        });
        if (written is not null) _durable = written;
    }

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
