using System.Net.Sockets;
using Azure;
using Keystone.Pipeline;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace Keystone.UnitTests.Pipeline;

public sealed class DeliveryFailuresTests
{
    public static TheoryData<Exception> ClusterOrStorage() =>
    [
        new SiloUnavailableException("silo unavailable"),
        new TimeoutException("Response did not arrive on time"),
        new TaskCanceledException(),
        new InconsistentStateException("etag mismatch"),
        new OrleansException("activation limit"),
        new RequestFailedException(503, "server busy"),
        new RequestFailedException(0, "connection reset"),
        new RequestFailedException(429, "throttled"),
        new HttpRequestException("connection refused"),
        new SocketException((int)SocketError.ConnectionRefused),
        new IOException("the response ended prematurely"),
        new AggregateException(new TimeoutException(), new SiloUnavailableException()),
    ];

    public static TheoryData<Exception> TheEvents() =>
    [
        new InvalidOperationException("poison event"),
        new ArgumentException("bad payload"),
        new FormatException("not a number"),
        new KeyNotFoundException("video_id"),
        new NullReferenceException(),
        new CodecNotFoundException("no codec for the payload value"),
        new RequestFailedException(400, "request body too large"),
        new AggregateException(new TimeoutException(), new InvalidOperationException("poison event")),
        new AggregateException(),
    ];

    [Theory]
    [MemberData(nameof(ClusterOrStorage))]
    public void A_failure_of_the_cluster_or_of_storage_is_transient(Exception e) => Assert.True(DeliveryFailures.IsTransient(e), e.ToString());

    [Theory]
    [MemberData(nameof(TheEvents))]
    public void A_failure_the_events_caused_is_not(Exception e) => Assert.False(DeliveryFailures.IsTransient(e), e.ToString());
}
