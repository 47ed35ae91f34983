using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Keystone.Checkpointing;

namespace Keystone.Ads;

/// <summary>
/// The ads pipeline's committed exports: what a billing system and a fraud team act on, written per checkpoint once
/// the campaigns that decided it are durable (see <see cref="Keystone.Checkpointing.CommittedExport{TRecord}"/>). The
/// topics of the same names carry the same verdicts at once, for dashboards; these are the records with effects.
/// </summary>
public static class AdExports
{
    public const string Billing = "ads-billing";
    public const string FraudAlerts = "ads-fraud-alerts";

    /// <summary>A record's id: derived from its sink and event, so a re-send after the horizon carries the same id.</summary>
    public static Guid IdOf(string sink, Guid eventId)
    {
        Span<byte> input = stackalloc byte[64];
        var length = Encoding.ASCII.GetBytes(sink, input);
        eventId.TryWriteBytes(input[length..]);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(input[..(length + 16)], hash);
        return new Guid(hash[..16]);
    }

    public static BillingRecord Bill(AdEvent ad, string eventType, int partition) =>
        new(IdOf(Billing, ad.EventId), ad.EventId, ad.CampaignId, eventType, ad.Timestamp, ad.CostMicros, ad.ProfileId, partition);

    public static FraudAlertRecord Alert(AdEvent ad, string eventType, string reason, int partition) =>
        new(IdOf(FraudAlerts, ad.EventId), ad.EventId, ad.CampaignId, eventType, ad.Timestamp, reason, ad.ProfileId, ad.DeviceId, partition);

    /// <summary>The fields every export record starts with.</summary>
    internal static void WriteHead(Utf8JsonWriter writer, Guid id, Guid eventId, string campaignId, string eventType, DateTimeOffset timestamp)
    {
        writer.WriteString("id", id);
        writer.WriteString("event_id", eventId);
        writer.WriteString("campaign_id", campaignId);
        writer.WriteString("event_type", eventType);
        writer.WriteString("timestamp", timestamp);
    }
}

/// <summary>A billable event (an impression, or a valid click) and what it costs the advertiser.</summary>
/// <remarks>A value, as <see cref="FraudAlertRecord"/> is: an operator holds every record it decided until the next
/// checkpoint (tens of thousands at 10,000 ad events/s), and as objects they were among what every young collection
/// copied (docs/performance.md, stop 46).</remarks>
public readonly record struct BillingRecord(Guid Id, Guid EventId, string CampaignId, string EventType, DateTimeOffset Timestamp, long CostMicros, string ProfileId, int Partition)
    : IExportRecord
{
    public void Write(Utf8JsonWriter writer)
    {
        AdExports.WriteHead(writer, Id, EventId, CampaignId, EventType, Timestamp);
        writer.WriteNumber("cost_micros", CostMicros);
        writer.WriteString("profile_id", ProfileId);
        writer.WriteNumber("partition", Partition);
    }
}

/// <summary>A click judged invalid, and why.</summary>
public readonly record struct FraudAlertRecord(Guid Id, Guid EventId, string CampaignId, string EventType, DateTimeOffset Timestamp, string Reason, string ProfileId, string DeviceId, int Partition)
    : IExportRecord
{
    public void Write(Utf8JsonWriter writer)
    {
        AdExports.WriteHead(writer, Id, EventId, CampaignId, EventType, Timestamp);
        writer.WriteString("reason", Reason);
        writer.WriteString("profile_id", ProfileId);
        writer.WriteString("device_id", DeviceId);
        writer.WriteNumber("partition", Partition);
    }
}
