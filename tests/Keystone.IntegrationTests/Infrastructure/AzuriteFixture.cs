using Azure.Storage.Blobs;
using Keystone.LocalInfra;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>One real Azurite process (in-memory) for the whole test assembly; tests isolate themselves by container and queue names.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private static int s_counter;

    public AzuriteProcess Azurite { get; private set; } = null!;

    public string ConnectionString => Azurite.ConnectionString;

    public BlobServiceClient Blobs => new(ConnectionString);

    /// <summary>A name no other test uses, valid for blob containers and queues.</summary>
    public static string UniqueName(string prefix) =>
        $"{prefix}-{Environment.ProcessId % 10000}-{Interlocked.Increment(ref s_counter)}-{Guid.NewGuid().ToString("N")[..6]}".ToLowerInvariant();

    private readonly SemaphoreSlim _sharedGate = new(1, 1);
    private TestSilo? _shared;

    /// <summary>
    /// One memory-streams silo shared by tests that only read their own events back (they use fresh ids and count
    /// deltas), so the suite does not pay a silo start per test.
    /// </summary>
    public async Task<TestSilo> SharedSiloAsync()
    {
        await _sharedGate.WaitAsync();
        try
        {
            return _shared ??= await TestSilo.StartAsync(TestSilo.DefaultSettings(this));
        }
        finally
        {
            _sharedGate.Release();
        }
    }

    public async Task InitializeAsync() => Azurite = await AzuriteProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_shared is not null) await _shared.DisposeAsync();
        await Azurite.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}
