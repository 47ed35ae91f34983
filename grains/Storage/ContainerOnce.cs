using Azure.Storage.Blobs;

namespace Keystone.Storage;

/// <summary>A blob container created on first use, once per process however many callers race to it.</summary>
public sealed class ContainerOnce(BlobContainerClient container)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile bool _ready;

    public BlobContainerClient Client => container;

    public async Task<BlobContainerClient> ReadyAsync(CancellationToken cancellationToken = default)
    {
        if (_ready) return container;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_ready) await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _ready = true;
        }
        finally
        {
            _gate.Release();
        }
        return container;
    }
}
