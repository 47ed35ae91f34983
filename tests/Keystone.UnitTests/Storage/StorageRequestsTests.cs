using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public sealed class StorageRequestsTests
{
    [Theory]
    [InlineData("blob", "PUT", "http://127.0.0.1:10000/devstoreaccount1/c/wal-0/000000000001?comp=appendblock", "blob.append")]
    [InlineData("blob", "PUT", "https://acct.blob.core.windows.net/c/user-1.json", "blob.put")]
    [InlineData("blob", "PUT", "https://acct.blob.core.windows.net/c?restype=container", "blob.create-container")]
    [InlineData("blob", "PUT", "https://acct.blob.core.windows.net/c/b?comp=block&blockid=AA", "blob.put-block")]
    [InlineData("blob", "GET", "https://acct.blob.core.windows.net/c?restype=container&comp=list&prefix=wal", "blob.list")]
    [InlineData("blob", "GET", "https://acct.blob.core.windows.net/c/user-1.json", "blob.read")]
    [InlineData("blob", "HEAD", "https://acct.blob.core.windows.net/c/user-1.json", "blob.properties")]
    [InlineData("blob", "DELETE", "https://acct.blob.core.windows.net/c/user-1.json", "blob.delete")]
    [InlineData("queue", "POST", "http://127.0.0.1:10001/devstoreaccount1/q-0/messages", "queue.enqueue")]
    [InlineData("queue", "GET", "http://127.0.0.1:10001/devstoreaccount1/q-0/messages?numofmessages=32", "queue.dequeue")]
    [InlineData("queue", "DELETE", "http://127.0.0.1:10001/devstoreaccount1/q-0/messages/abc?popreceipt=x", "queue.delete-message")]
    [InlineData("table", "GET", "http://127.0.0.1:10002/devstoreaccount1/OrleansSiloInstances()", "table.query")]
    [InlineData("table", "PATCH", "http://127.0.0.1:10002/devstoreaccount1/OrleansSiloInstances(PartitionKey='a',RowKey='b')", "table.write")]
    public void Requests_are_named_by_service_and_operation(string service, string method, string uri, string expected) =>
        Assert.Equal(expected, StorageRequests.Classify(service, method, new Uri(uri)));

    [Fact]
    public async Task The_last_writes_are_remembered_by_name_and_reads_are_not()
    {
        using var requests = new StorageRequests();
        var options = requests.Attach(new BlobClientOptions { Transport = new HttpClientTransport(new HttpClient(new Answer())) }, "blob");
        var pipeline = HttpPipelineBuilder.Build(options);
        await Send(pipeline, RequestMethod.Put, "http://127.0.0.1:10000/devstoreaccount1/state/bucket-3/000042");
        await Send(pipeline, RequestMethod.Get, "http://127.0.0.1:10000/devstoreaccount1/state/bucket-3/000042");
        for (var i = 0; i < 40; i++) await Send(pipeline, RequestMethod.Put, $"http://127.0.0.1:10000/devstoreaccount1/lake/p0-{i}?comp=appendblock");

        var recent = requests.RecentWrites;
        Assert.Equal(32, recent.Count);
        Assert.Equal("blob.append /devstoreaccount1/lake/p0-39", recent[^1]);
        Assert.DoesNotContain(recent, w => w.StartsWith("blob.read", StringComparison.Ordinal));
        Assert.Equal(42, requests.Total);
    }

    private static async Task Send(HttpPipeline pipeline, RequestMethod method, string uri)
    {
        using var message = pipeline.CreateMessage();
        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(uri));
        await pipeline.SendAsync(message, CancellationToken.None);
    }

    private sealed class Answer : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.Created));
    }
}
