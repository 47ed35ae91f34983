using System.Net.Sockets;
using Azure;
using Orleans.Serialization;
using Orleans.Storage;

namespace Keystone.Pipeline;

/// <summary>
/// Tells a failure of the cluster or of storage (a silo not reachable until the cluster declares it dead, a call that
/// timed out, storage away, another activation having written a grain's state) from a failure caused by the events
/// themselves. Only the second kind makes an event poison: an operator that set events aside for the first kind would
/// take them out of the counts while a silo restarts.
/// </summary>
public static class DeliveryFailures
{
    public static bool IsTransient(Exception e) => e switch
    {
        // Before OrleansException: a payload that cannot be serialised fails the same way every time.
        SerializerException => false,
        AggregateException all => all.InnerExceptions.Count > 0 && all.InnerExceptions.All(IsTransient),
        OrleansMessageRejectionException or TimeoutException or OperationCanceledException => true,
        InconsistentStateException => true,
        OrleansException => true,
        RequestFailedException storage => storage.Status is 0 or 408 or 429 or >= 500,
        HttpRequestException or SocketException or IOException => true,
        _ => false,
    };
}
