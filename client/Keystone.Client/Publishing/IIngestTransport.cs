using Keystone.Ingest;

namespace Keystone.Client.Publishing;

/// <summary>How a batch reaches the cluster. The real one is a grain call; tests of pure SDK logic use a fake.</summary>
/// <remarks>The request's body is a pooled buffer of the publisher's: it is valid until the returned task completes
/// and may then hold another batch. A transport that keeps requests must copy the body.</remarks>
public interface IIngestTransport
{
    Task<IngestResult> SendAsync(IngestRequest request, CancellationToken cancellationToken);
}

/// <summary>Sends batches to the ingest grain through the Orleans client (or a co-hosted silo's grain factory).</summary>
public sealed class OrleansIngestTransport(IGrainFactory grains) : IIngestTransport
{
    public Task<IngestResult> SendAsync(IngestRequest request, CancellationToken cancellationToken) =>
        grains.GetGrain<IIngestGrain>(0).Ingest(request).WaitAsync(cancellationToken);
}
