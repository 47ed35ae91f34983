using Azure.Storage.Blobs;
using Keystone.Checkpointing;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;

namespace Keystone.IntegrationTests.Storage;

/// <summary>
/// Writes whose answer is lost on the way back, against Azurite through a relay that loses answers: the storage client
/// sends the write again (after <c>Keystone:Storage:RequestTryTimeout</c>), and the write must not land twice nor be
/// taken for another writer's.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class LostAnswerTests(AzuriteFixture azurite)
{
    // The storage client as the silo builds it, with a short try timeout: a try with no answer is sent again.
    private static BlobServiceClient Through(BlackHoleProxy relay, AzuriteFixture azurite) => new(
        AzuriteProcess.BuildConnectionString(relay.Port, azurite.Azurite.QueuePort, azurite.Azurite.TablePort),
        new BlobClientOptions { Retry = { NetworkTimeout = TimeSpan.FromSeconds(1), MaxRetries = 5, Delay = TimeSpan.FromMilliseconds(200) } });

    private static EventBatch Message(string user) => new(Guid.NewGuid(), 0, DateTimeOffset.UnixEpoch,
        [new KeystoneEvent(Guid.NewGuid(), "user.login", DateTimeOffset.UnixEpoch, "1.0", new EventSource("t", "tv", "r"), Payload.Create(("user_id", user)), EventMetadata.Empty)]);

    [Fact]
    public async Task An_append_whose_answer_is_lost_is_in_the_log_once_after_the_storage_client_sends_it_again()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("log");
        var log = new BlobFrontingLog(Through(relay, azurite).GetBlobContainerClient(name));
        var writer = await log.OpenWriterAsync(0);
        await writer.AppendAsync([Message("a")]);
        // Storage's own view, not through the relay.
        var segment = azurite.Blobs.GetBlobContainerClient(name).GetBlobClient("p000/0000000000000001");
        var before = (await segment.GetPropertiesAsync()).Value.ContentLength;

        relay.LoseAnswers();
        var append = writer.AppendAsync([Message("b")]);
        // The append reached storage and took effect; only its answer is lost. Then the network is whole again, and
        // the client's next try (on a new connection) gets storage's answer to a block it already has.
        await Eventually.Until(async () => (await segment.GetPropertiesAsync()).Value.ContentLength, n => n > before, TimeSpan.FromSeconds(30), "the second append in the blob");
        relay.Heal();
        var placed = await append;

        Assert.Equal([2L], placed.Select(m => m.Position));
        var read = await log.ReadAsync(0, 1, 10);
        Assert.Equal(["a", "b"], read.Select(m => m.Events.Single().Payload.GetString("user_id")));
        Assert.Equal([1L, 2], read.Select(m => m.Position));
        Assert.True(relay.Swallowed > 0, "no answer was lost");

        // And the log goes on where it ends.
        Assert.Equal([3L], (await writer.AppendAsync([Message("c")])).Select(m => m.Position));
        Assert.Equal(["a", "b", "c"], (await log.ReadAsync(0, 1, 10)).Select(m => m.Events.Single().Payload.GetString("user_id")));
    }

    [Fact]
    public async Task A_snapshot_segment_whose_answer_is_lost_is_recognised_as_written_and_another_writers_is_still_refused()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("state");
        var direct = azurite.Blobs.GetBlobContainerClient(name);
        await direct.CreateIfNotExistsAsync();
        var viaRelay = Through(relay, azurite).GetBlobContainerClient(name);
        var bytes = System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 * 1024);

        relay.LoseAnswers();
        var write = Keystone.Storage.SnapshotStore.CreateSegmentAsync(viaRelay.GetBlobClient("0000/000000000001-d"), bytes);
        await Eventually.Until(async () => (await direct.GetBlobClient("0000/000000000001-d").ExistsAsync()).Value, there => there, TimeSpan.FromSeconds(30), "the segment in storage");
        relay.Heal();
        // The next try finds the segment there, with this write's bytes: written, not another activation's.
        await write;
        Assert.Equal(bytes, (await direct.GetBlobClient("0000/000000000001-d").DownloadContentAsync()).Value.Content.ToArray());
        Assert.True(relay.Swallowed > 0, "no answer was lost");

        // A segment someone else wrote stays a conflict.
        await direct.GetBlobClient("0000/000000000002-d").UploadAsync(BinaryData.FromString("another activation's"));
        var refused = await Assert.ThrowsAsync<Azure.RequestFailedException>(() => Keystone.Storage.SnapshotStore.CreateSegmentAsync(viaRelay.GetBlobClient("0000/000000000002-d"), bytes));
        Assert.Equal(409, refused.Status);
    }

    [Fact]
    public async Task An_operator_log_append_whose_answer_is_lost_is_in_the_log_once()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("wal");
        var log = new Keystone.Aggregation.BlobOperatorLogFactory(Through(relay, azurite).GetBlobContainerClient(name)).Open("activity-0");
        await log.AppendAsync(1, 1, new byte[] { 1, 1, 1 });
        var segment = azurite.Blobs.GetBlobContainerClient(name).GetBlobClient("activity-0/000000000001");
        var before = (await segment.GetPropertiesAsync()).Value.ContentLength;

        relay.LoseAnswers();
        var append = log.AppendAsync(1, 2, new byte[] { 2, 2 });
        await Eventually.Until(async () => (await segment.GetPropertiesAsync()).Value.ContentLength, n => n > before, TimeSpan.FromSeconds(30), "the second record in the blob");
        relay.Heal();
        await append;
        await log.AppendAsync(1, 3, new byte[] { 3 });

        Assert.Equal([1L, 2, 3], (await log.ReadAsync(0)).Select(r => r.Sequence));
        Assert.True(relay.Swallowed > 0, "no answer was lost");
    }
    // The writers below overwrite by name: the storage client's next try after a lost answer writes the same name with
    // the same bytes. A conditional create there (if-none-match) would turn that try into a 409 for the writer's own
    // write; these tests fail then.

    private sealed record Bill(Guid EventId, long CostMicros) : IExportRecord
    {
        public void Write(System.Text.Json.Utf8JsonWriter writer)
        {
            writer.WriteString("event_id", EventId);
            writer.WriteNumber("cost_micros", CostMicros);
        }
    }

    [Fact]
    public async Task An_export_file_whose_answer_is_lost_is_listed_once_with_its_records()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("export");
        var direct = new ExportStore(azurite.Blobs.GetBlobContainerClient(name));
        var viaRelay = new ExportStore(Through(relay, azurite).GetBlobContainerClient(name));
        var at = DateTimeOffset.UtcNow;
        Bill[] bills = [new(Guid.NewGuid(), 1_500), new(Guid.NewGuid(), 2_500)];
        await viaRelay.WriteAsync("ads-billing", 0, [new Bill(Guid.NewGuid(), 1)], at.AddSeconds(-1));   // the container exists

        relay.LoseAnswers();
        var write = viaRelay.WriteAsync("ads-billing", 0, bills, at);
        await Eventually.Until(async () => (await direct.ListAsync("ads-billing", at.AddMinutes(-1), at.AddMinutes(1))).Count, n => n == 2, TimeSpan.FromSeconds(30), "the file in storage");
        relay.Heal();
        Assert.Equal(ExportStore.NameOf("ads-billing", 0, at), await write);

        var files = await direct.ListAsync("ads-billing", at.AddMinutes(-1), at.AddMinutes(1));
        Assert.Equal([1, 2], files.Select(f => f.Records));
        Assert.Equal(bills.Select(b => b.EventId), (await direct.ReleasedAsync("ads-billing", 0, at, at)).Select(r => r.EventId));
        Assert.True(relay.Swallowed > 0, "no answer was lost");
    }

    [Fact]
    public async Task A_dead_letter_whose_answer_is_lost_is_kept_once()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("dead");
        var direct = new Keystone.Operations.DeadLetterStore(azurite.Blobs.GetBlobContainerClient(name));
        var viaRelay = new Keystone.Operations.DeadLetterStore(Through(relay, azurite).GetBlobContainerClient(name));
        var now = DateTimeOffset.UtcNow;
        await viaRelay.AddAsync([Letter(now)]);   // the container exists

        relay.LoseAnswers();
        var letter = Letter(now);
        var keep = viaRelay.AddAsync([letter]);
        await Eventually.Until(async () => await direct.GetAsync(letter.Id), kept => kept is not null, TimeSpan.FromSeconds(30), "the dead letter in storage");
        relay.Heal();
        await keep;

        var listed = await direct.ListAsync("ingest", null, 10, null);
        Assert.Equal(2, listed.Items.Count);
        Assert.Equal(letter, listed.Items.Single(l => l.Id == letter.Id));
        Assert.True(relay.Swallowed > 0, "no answer was lost");

        static Keystone.Operations.DeadLetter Letter(DateTimeOffset at) => new(Keystone.Operations.DeadLetterStore.NewId("ingest", at), "ingest", "video.play",
            Guid.NewGuid().ToString(), "SchemaViolation: video_id is missing", 1, at, "{}", null);
    }

    [Fact]
    public async Task A_graph_page_whose_answer_is_lost_is_sealed_once_and_reads_back()
    {
        await using var relay = BlackHoleProxy.To(azurite.Azurite.BlobPort);
        var name = AzuriteFixture.UniqueName("graph");
        var direct = azurite.Blobs.GetBlobContainerClient(name);
        var viaRelay = new Keystone.Graph.GraphPageStore(Through(relay, azurite).GetBlobContainerClient(name));
        var at = DateTimeOffset.UtcNow;
        await viaRelay.WriteAsync(Keystone.Graph.NodeType.Video, "v1", Keystone.Graph.EdgeLabel.Watches, 0, [new() { Source = "u0", At = at }]);   // the container exists

        relay.LoseAnswers();
        Keystone.Graph.InEntry[] page = [new() { Source = "u1", At = at }, new() { Source = "u2", At = at }];
        var seal = viaRelay.WriteAsync(Keystone.Graph.NodeType.Video, "v1", Keystone.Graph.EdgeLabel.Watches, 1, page);
        var blob = Keystone.Graph.GraphPageStore.BlobName(Keystone.Graph.NodeType.Video, "v1", Keystone.Graph.EdgeLabel.Watches, 1);
        await Eventually.Until(async () => (await direct.GetBlobClient(blob).ExistsAsync()).Value, there => there, TimeSpan.FromSeconds(30), "the page in storage");
        relay.Heal();
        await seal;

        var read = await new Keystone.Graph.GraphPageStore(direct).ReadAsync(Keystone.Graph.NodeType.Video, "v1", Keystone.Graph.EdgeLabel.Watches, 1);
        Assert.Equal(["u1", "u2"], read.Select(e => e.Source));
        var blobs = new List<string>();
        await foreach (var b in direct.GetBlobsAsync()) blobs.Add(b.Name);
        Assert.Equal(2, blobs.Count);
        Assert.True(relay.Swallowed > 0, "no answer was lost");
    }
}
