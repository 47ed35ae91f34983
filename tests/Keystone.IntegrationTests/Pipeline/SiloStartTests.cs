using Keystone.Checkpointing;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;
using Orleans.Configuration;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>A silo's start against a storage emulator that stops answering for longer than a grain call may wait.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SiloStartTests(AzuriteFixture azurite)
{
    private const string FirstAttemptFailed = "A call the silo's start needs failed (attempt 1 of 4)";

    [Fact]
    public async Task A_silo_starts_when_storage_answers_nothing_for_longer_than_the_response_timeout()
    {
        // An emulator of its own: the shared one serves the other tests meanwhile.
        await using var storage = await AzuriteProcess.StartAsync();
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Storage:ConnectionString"] = storage.ConnectionString;
        var started = DateTime.UtcNow;

        TestSilo silo;
        using (var pause = new ProcessPause(storage.ProcessId))
        {
            // The coordinator's state read waits on the stopped emulator past the (shortened) response timeout, as
            // stop 55's CI run did past the default 30 s; storage comes back after the first attempt failed.
            var starting = TestSilo.StartAsync(settings, s => s.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5)));
            // Storage comes back once the first attempt has failed, not after a fixed time.
            await Eventually.Until(() => Task.FromResult(RecentWarnings.Instance.Describe(DateTime.UtcNow - started + TimeSpan.FromSeconds(1), max: 200)),
                w => w.Contains(FirstAttemptFailed, StringComparison.Ordinal) || starting.IsCompleted, TimeSpan.FromSeconds(60), "the first attempt of the coordinator's start to fail");
            pause.Dispose();
            silo = await starting;
        }
        await using (silo)
        {
            Assert.Contains(FirstAttemptFailed, RecentWarnings.Instance.Describe(DateTime.UtcNow - started + TimeSpan.FromSeconds(1), max: 200));
            var status = await silo.Client.GetGrain<ICheckpointCoordinatorGrain>(0).GetStatus();
            Assert.NotNull(status);
        }
    }
}
