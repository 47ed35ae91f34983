using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Storage;

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
/// memory, is written at the operators' barriers, when many events are pending, and on deactivation. The older part
/// of that memory goes to slots of its own before the state (see <see cref="CampaignLedger.DedupeSlotDue"/>), so a
/// write carries only the ids applied since the last one.
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
    private StateCheckpointer<AdCampaignState> _checkpointer = null!;
    private readonly PartitionCoverage _coverage = new();
    private IGrainStorage _storage = null!;
    private readonly GrainState<CampaignDedupeSlotState>[] _slots = new GrainState<CampaignDedupeSlotState>[CampaignLedger.DedupeSlots];
    // A slot and the state that refers to it are written in that order, one such pair at a time.
    private readonly SemaphoreSlim _writing = new(1, 1);

    private static string SlotName(int slot) => $"campaign-dedupe-{slot}";

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Every slot, not only those the state refers to: a slot is written with the version it is at.
        _storage = ServiceProvider.GetRequiredKeyedService<IGrainStorage>(StorageNames.State);
        for (var i = 0; i < _slots.Length; i++) _slots[i] = new GrainState<CampaignDedupeSlotState>(new CampaignDedupeSlotState());
        await Task.WhenAll(_slots.Select((slot, i) => _storage.ReadStateAsync(SlotName(i), this.GetGrainId(), slot)));
        var stored = new Dictionary<int, (string?, byte[]?)>();
        for (var i = 0; i < _slots.Length; i++)
        {
            if (_slots[i].RecordExists) stored[i] = (_slots[i].ETag, _slots[i].State?.Ids);
            _slots[i].State = new CampaignDedupeSlotState();
        }
        _ledger = new CampaignLedger(this.GetPrimaryKeyString(), options.Value, state.State, stored) { Settings = settings.State.ToSettings() };
        _checkpointer = new StateCheckpointer<AdCampaignState>(state, "campaign", metrics, logger, SnapshotStore.PreparesAtSerialization(ServiceProvider));
    }

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

    private async Task Write()
    {
        await _writing.WaitAsync();
        try
        {
            if (_checkpointer.Dirty && _ledger.DedupeSlotDue(time.GetUtcNow()) is { } due)
            {
                var slot = _slots[due.Slot];
                slot.State = new CampaignDedupeSlotState { Ids = due.Ids };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    await _storage.WriteStateAsync(SlotName(due.Slot), this.GetGrainId(), slot);
                }
                finally
                {
                    slot.State = new CampaignDedupeSlotState();
                }
                // No events: those are counted with the state that refers to the slot.
                metrics.Written("campaign-dedupe", 0, clock.Elapsed);
                _ledger.DedupeSlotWritten(due, slot.ETag ?? throw new InvalidOperationException($"the storage gave no version for {SlotName(due.Slot)}"), time.GetUtcNow());
            }
            try
            {
                await _checkpointer.WriteAsync(() => _ledger.PrepareCheckpoint(time.GetUtcNow()), _ledger.ReleaseCheckpoint);
            }
            finally
            {
                // Written, the state released the slot's reservation; otherwise the slot may be referred to after all.
                _ledger.DedupeWriteAbandoned();
            }
        }
        finally
        {
            _writing.Release();
        }
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
