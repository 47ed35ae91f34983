using System.Net;
using Azure.Storage.Blobs;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.Storage;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>The partition count is part of the stored checkpoints: a restart with another one is refused, not run on.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class PartitionLayoutTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_silo_does_not_start_with_another_partition_count_than_its_checkpoints_were_written_with()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Checkpoints:Interval"] = "00:00:00.500";
        settings["Keystone:Aggregation:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Graph:CheckpointInterval"] = "00:00:01";
        settings["Keystone:Ads:CheckpointInterval"] = "00:00:01";
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(settings["Keystone:Storage:Container"]);

        await using (var silo = await TestSilo.StartAsync(settings))
        {
            var events = Enumerable.Range(0, 40).Select(i => TestEvents.Play($"layout-u{i % 8}", "layout-v1")).ToList();
            Assert.Equal(HttpStatusCode.Accepted, (await silo.Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)))).StatusCode);
            // The coordinator's state in storage, written once a checkpoint completed: what a restart reads.
            await Eventually.Until(async () => (await SnapshotStore.ReadAllAsync(container)).Keys.Count(k => k.StartsWith("checkpoints|", StringComparison.Ordinal)),
                n => n > 0, TimeSpan.FromSeconds(60), "the checkpoint coordinator's stored state");
        }

        settings["Keystone:Ingest:Partitions"] = "2";
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => TestSilo.StartAsync(settings));
        Assert.Contains("written with Keystone:Ingest:Partitions = 4, and it is configured with 2", refused.ToString(), StringComparison.Ordinal);

        // With the count they were written with, the same storage starts.
        settings["Keystone:Ingest:Partitions"] = "4";
        await using var again = await TestSilo.StartAsync(settings);
        Assert.Equal(HttpStatusCode.OK, (await again.Http.GetAsync("/v1/checkpoints")).StatusCode);
    }
}
