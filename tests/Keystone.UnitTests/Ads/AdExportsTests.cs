using System.Text;
using System.Text.Json;
using Keystone.Ads;

namespace Keystone.UnitTests.Ads;

public sealed class AdExportsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 13, 0, 0, TimeSpan.Zero);

    private static string Json(Keystone.Checkpointing.IExportRecord record)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            record.Write(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    [Fact]
    public void A_record_id_is_the_same_for_the_same_sink_and_event_and_differs_across_sinks()
    {
        var eventId = Guid.NewGuid();
        Assert.Equal(AdExports.IdOf(AdExports.Billing, eventId), AdExports.IdOf(AdExports.Billing, eventId));
        Assert.NotEqual(AdExports.IdOf(AdExports.Billing, eventId), AdExports.IdOf(AdExports.FraudAlerts, eventId));
        Assert.NotEqual(AdExports.IdOf(AdExports.Billing, eventId), AdExports.IdOf(AdExports.Billing, Guid.NewGuid()));
        Assert.NotEqual(eventId, AdExports.IdOf(AdExports.Billing, eventId));
    }

    [Fact]
    public void Billing_and_fraud_records_are_one_json_object_each_with_the_documented_fields()
    {
        var eventId = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        var click = new AdEvent(eventId, AdEventKind.Click, T0, "c1", "s1", "p1", "d1", 250);

        var bill = JsonDocument.Parse(Json(AdExports.Bill(click, "ad.click", 3))).RootElement;
        Assert.Equal(["id", "event_id", "campaign_id", "event_type", "timestamp", "cost_micros", "profile_id", "partition"], bill.EnumerateObject().Select(p => p.Name));
        Assert.Equal(AdExports.IdOf(AdExports.Billing, eventId), bill.GetProperty("id").GetGuid());
        Assert.Equal((eventId, "c1", "ad.click", T0, 250L, "p1", 3),
            (bill.GetProperty("event_id").GetGuid(), bill.GetProperty("campaign_id").GetString(), bill.GetProperty("event_type").GetString(),
             bill.GetProperty("timestamp").GetDateTimeOffset(), bill.GetProperty("cost_micros").GetInt64(), bill.GetProperty("profile_id").GetString(), bill.GetProperty("partition").GetInt32()));

        var alert = JsonDocument.Parse(Json(AdExports.Alert(click, "ad.click", "too-fast", 3))).RootElement;
        Assert.Equal(["id", "event_id", "campaign_id", "event_type", "timestamp", "reason", "profile_id", "device_id", "partition"], alert.EnumerateObject().Select(p => p.Name));
        Assert.Equal(AdExports.IdOf(AdExports.FraudAlerts, eventId), alert.GetProperty("id").GetGuid());
        Assert.Equal(("too-fast", "d1"), (alert.GetProperty("reason").GetString(), alert.GetProperty("device_id").GetString()));
    }
}
