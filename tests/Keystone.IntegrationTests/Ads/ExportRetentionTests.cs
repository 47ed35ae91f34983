using Azure.Storage.Blobs;
using Keystone.Ads;
using Keystone.Checkpointing;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Silo.Hosting;

namespace Keystone.IntegrationTests.Ads;

/// <summary>Committed export files are deleted once older than <c>Keystone:Ads:ExportRetention</c>, and only those.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ExportRetentionTests(AzuriteFixture azurite)
{
    private static readonly BillingRecord[] OneRecord =
        [new(Guid.NewGuid(), Guid.NewGuid(), "c1", "ad.click", DateTimeOffset.UnixEpoch, 250_000, "p1", 0)];

    private static async Task<HashSet<string>> Names(BlobContainerClient container)
    {
        var names = new HashSet<string>();
        await foreach (var blob in container.GetBlobsAsync()) names.Add(blob.Name);
        return names;
    }

    [Fact]
    public async Task A_purge_deletes_exactly_the_files_committed_before_the_cutoff()
    {
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("export"));
        var store = new ExportStore(container);
        var cutoff = new DateTimeOffset(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);
        var old = new[] { cutoff.AddDays(-30), cutoff.AddHours(-13), cutoff.AddMinutes(-1) };
        var kept = new[] { cutoff, cutoff.AddMinutes(1), cutoff.AddDays(3) };
        foreach (var at in old.Concat(kept))
            foreach (var sink in new[] { AdExports.Billing, AdExports.FraudAlerts })
                await store.WriteAsync(sink, 3, OneRecord, at);
        // Something else in the container, in a day folder the purge empties: not an export, not touched.
        await container.UploadBlobAsync($"{AdExports.Billing}/{cutoff.AddDays(-30):yyyy-MM-dd}/notes.txt", BinaryData.FromString("kept"));

        Assert.Equal(old.Length * 2, await store.PurgeAsync(cutoff));

        var expected = kept.SelectMany(at => new[] { ExportStore.NameOf(AdExports.Billing, 3, at), ExportStore.NameOf(AdExports.FraudAlerts, 3, at) })
            .Append($"{AdExports.Billing}/{cutoff.AddDays(-30):yyyy-MM-dd}/notes.txt");
        Assert.Equal(expected.ToHashSet(), await Names(container));
        Assert.Equal(0, await store.PurgeAsync(cutoff));
        Assert.Equal(0, await new ExportStore(new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(AzuriteFixture.UniqueName("none"))).PurgeAsync(cutoff));
    }

    [Fact]
    public async Task A_silo_deletes_exports_past_the_retention_when_it_starts()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Ads:ExportRetention"] = "02:00:00";
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(SiloSetup.ExportContainer(settings["Keystone:Storage:Container"]!));
        var store = new ExportStore(container);
        var now = DateTimeOffset.UtcNow;
        var stale = await store.WriteAsync(AdExports.Billing, 0, OneRecord, now.AddHours(-3));
        var recent = await store.WriteAsync(AdExports.Billing, 0, OneRecord, now.AddMinutes(-10));

        await using var silo = await TestSilo.StartAsync(settings);

        await Eventually.Until(() => Names(container), names => !names.Contains(stale!), TimeSpan.FromSeconds(30), "the stale export deleted");
        Assert.Contains(recent!, await Names(container));
    }
}
