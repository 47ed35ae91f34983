using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Graph;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;
using Keystone.Storage;
using Orleans.Configuration;
using Orleans.Core.Internal;

namespace Keystone.IntegrationTests.Storage;

/// <summary>
/// An entity whose state write got no answer, and an entity with two states one of which is refused: the cases behind
/// MembershipUnderLoadTests' short graph in stop 56, where a user's activity write to a bucket on the killed silo
/// was made durable without an answer, its next write was refused as stale, and it deactivated without writing its
/// graph side.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class UnansweredWriteTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_write_made_durable_without_an_answer_is_recognised_by_the_next_write_of_the_same_activation()
    {
        // An emulator of its own, stopped while the test's write waits on it; the shared one serves the other tests.
        await using var storage = await AzuriteProcess.StartAsync();
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:ConnectionString"] = storage.ConnectionString;
        await using var silo = await TestSilo.StartAsync(settings, s => s.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(3)));
        var store = silo.Services.GetRequiredService<SnapshotStore>();
        var user = silo.Client.GetGrain<IUserGrain>("unanswered-u1");
        var key = SnapshotGrainStorage.Key("activity", user.GetGrainId());
        var bucket = silo.Client.GetGrain<ISnapshotBucketGrain>(store.BucketOf(key));

        await user.ApplyActivity(Batch(1, TestEvents.Play("unanswered-u1", "v1")));
        var activation = await user.Checkpoint();
        Assert.Equal(1, (await bucket.Read(key))!.Version);

        await user.ApplyActivity(Batch(2, TestEvents.Play("unanswered-u1", "v2")));
        using (var pause = new ProcessPause(storage.ProcessId))
        {
            // The bucket has queued the write and waits on storage; the user's call to it times out.
            await Assert.ThrowsAnyAsync<Exception>(() => user.Checkpoint());
            await Eventually.Until(() => Task.FromResult(store.Unanswered.IsPending(key)), pending => pending, TimeSpan.FromSeconds(30), "the user's write to go unanswered");

            // Written again while that write is still queued: the bucket refuses it at version 2, which is not durable
            // yet. Not a conflict yet either: the write fails as on a slow storage, and the activation stays.
            await user.ApplyActivity(Batch(3, TestEvents.Play("unanswered-u1", "v3")));
            var early = await Assert.ThrowsAnyAsync<Exception>(() => user.Checkpoint());
            Assert.IsNotType<Orleans.Storage.InconsistentStateException>(early);
            Assert.True(store.Unanswered.IsPending(key));
        }
        // Storage answers again, and the write that had no answer is made durable all the same.
        await Eventually.Until(async () => (await bucket.Read(key))?.Version, v => v == 2, TimeSpan.FromSeconds(60), "the unanswered write to become durable");

        // The next write of the same activation expects version 1 and finds 2, its own: it writes on top of it, where
        // it used to take it for another activation's, deactivate, and lose what it held in memory.
        Assert.Equal(activation, await user.Checkpoint());
        Assert.Equal(3, (await bucket.Read(key))!.Version);
        // Counted, with any other grain's write the stopped storage left unanswered (the silo's own grains write too).
        var stats = System.Text.Json.Nodes.JsonNode.Parse(await silo.Http.GetStringAsync("/v1/stats"))!["snapshot_segments"]!;
        Assert.True(stats["unanswered_writes"]!.GetValue<long>() >= 1, stats.ToJsonString());
        Assert.True(stats["unanswered_found_durable"]!.GetValue<long>() >= 1, stats.ToJsonString());
        Assert.Equal(3, (await user.GetActivity(null, null))!.Totals.Events);
    }

    [Fact]
    public async Task An_entity_whose_activity_write_is_refused_as_stale_still_writes_its_graph_side_as_it_leaves()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        await using var silo = await TestSilo.StartAsync(settings);
        var store = silo.Services.GetRequiredService<SnapshotStore>();
        const string id = "stale-activity-u1";
        var user = silo.Client.GetGrain<IUserGrain>(id);
        var activityKey = SnapshotGrainStorage.Key("activity", user.GetGrainId());
        var graphKey = SnapshotGrainStorage.Key("graph", user.GetGrainId());
        var activityBucket = silo.Client.GetGrain<ISnapshotBucketGrain>(store.BucketOf(activityKey));
        var graphBucket = silo.Client.GetGrain<ISnapshotBucketGrain>(store.BucketOf(graphKey));

        var first = TestEvents.Play(id, "v1");
        await user.ApplyActivity(Batch(1, first));
        await user.ApplyGraph(new GraphBatch(0, 1, [first], [], []));
        await user.Checkpoint();
        await user.CheckpointGraph(0, 1);
        var activity = (await activityBucket.Read(activityKey))!;
        var graphVersion = (await graphBucket.Read(graphKey))!.Version;

        // Another writer moves the activity state on (as a second activation of the user would): this activation's
        // next activity write is refused as stale.
        Assert.True((await activityBucket.Write(activityKey, activity.Version, new Orleans.Concurrency.Immutable<byte[]>(activity.Data))).Written);

        var second = TestEvents.Play(id, "v2");
        await user.ApplyActivity(Batch(2, second));
        await user.ApplyGraph(new GraphBatch(0, 2, [second], [], []));
        await user.Cast<IGrainManagementExtension>().DeactivateOnIdle();

        // Its graph side is written as it leaves all the same: the edge to v2 is durable, and a new activation has it.
        await Eventually.Until(async () => (await graphBucket.Read(graphKey))!.Version, v => v > graphVersion, TimeSpan.FromSeconds(30), "the leaving user's graph write");
        var node = await user.GetNode();
        Assert.Equal(2, node!.Degrees.Single(d => d.Label == GraphSchema.Name(EdgeLabel.Watches) && d.Direction == "out").Count);
    }

    private static ActivityBatch Batch(long sequence, KeystoneEvent e) => new(0, sequence, null, [e]);
}
