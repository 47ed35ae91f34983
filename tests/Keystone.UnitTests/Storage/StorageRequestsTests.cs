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

    [Fact]
    public async Task A_request_waiting_for_its_answer_is_in_flight_with_its_wait_until_it_is_answered()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var requests = new StorageRequests(time);
        var held = new HeldAnswer();
        var pipeline = HttpPipelineBuilder.Build(requests.Attach(new BlobClientOptions { Transport = new HttpClientTransport(new HttpClient(held)), Retry = { MaxRetries = 0 } }, "blob"));

        var sending = Send(pipeline, RequestMethod.Get, "http://127.0.0.1:10000/devstoreaccount1/state?restype=container&comp=list&prefix=b3");
        await held.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(12));

        var waiting = Assert.Single(requests.InFlight());
        Assert.Equal(("blob.list", "/devstoreaccount1/state", TimeSpan.FromSeconds(12)), (waiting.Operation, waiting.Target, waiting.Waiting));
        Assert.Equal("blob.list /devstoreaccount1/state (12.0 s)", requests.DescribeInFlight(TimeSpan.FromSeconds(10)));
        Assert.Equal("", requests.DescribeInFlight(TimeSpan.FromSeconds(13)));

        held.Answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        await sending;
        Assert.Empty(requests.InFlight());
        Assert.Equal(1, requests.Total);
    }

    [Fact]
    public async Task A_request_that_fails_is_no_longer_in_flight()
    {
        using var requests = new StorageRequests();
        var held = new HeldAnswer();
        var pipeline = HttpPipelineBuilder.Build(requests.Attach(new BlobClientOptions { Transport = new HttpClientTransport(new HttpClient(held)), Retry = { MaxRetries = 0 } }, "blob"));

        var sending = Send(pipeline, RequestMethod.Put, "http://127.0.0.1:10000/devstoreaccount1/state/bucket-1/000001");
        await held.Arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Single(requests.InFlight());
        held.Answer.SetException(new HttpRequestException("connection reset"));
        await Assert.ThrowsAnyAsync<Exception>(() => sending);
        Assert.Empty(requests.InFlight());
    }

    [Fact]
    public void A_synchronous_request_is_counted_and_leaves_nothing_in_flight()
    {
        using var requests = new StorageRequests();
        var pipeline = HttpPipelineBuilder.Build(requests.Attach(new BlobClientOptions { Transport = new HttpClientTransport(new HttpClient(new Answer())) }, "blob"));
        using var message = pipeline.CreateMessage();
        message.Request.Method = RequestMethod.Head;
        message.Request.Uri.Reset(new Uri("http://127.0.0.1:10000/devstoreaccount1/state/bucket-1/000001"));
        pipeline.Send(message, CancellationToken.None);
        Assert.Equal(1, requests.Snapshot()["blob.properties"]);
        Assert.Empty(requests.InFlight());
    }

    [Fact]
    public void A_stalled_request_is_reported_once_and_then_once_more_when_it_is_no_longer_waiting()
    {
        var stalls = new StorageStalls(TimeSpan.FromSeconds(10));
        StorageRequests.Unanswered Waiting(long id, double seconds) => new(id, "blob.list", $"/c{id}", TimeSpan.FromSeconds(seconds));

        var (stalled, cleared) = stalls.Look([Waiting(1, 9.9), Waiting(2, 0.1)]);
        Assert.Empty(stalled);
        Assert.Empty(cleared);

        (stalled, cleared) = stalls.Look([Waiting(1, 10), Waiting(2, 0.2), Waiting(3, 30)]);
        Assert.Equal([1L, 3L], stalled.Select(s => s.Id).Order());
        Assert.Empty(cleared);

        (stalled, cleared) = stalls.Look([Waiting(1, 15), Waiting(2, 10.5)]);
        Assert.Equal([2L], stalled.Select(s => s.Id));
        Assert.Equal([3L], cleared.Select(s => s.Id));

        (stalled, cleared) = stalls.Look([]);
        Assert.Empty(stalled);
        Assert.Equal([1L, 2L], cleared.Select(s => s.Id).Order());
    }

    private sealed class HeldAnswer : HttpMessageHandler
    {
        public TaskCompletionSource Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<HttpResponseMessage> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Arrived.TrySetResult();
            return Answer.Task;
        }
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

        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) => new(HttpStatusCode.Created);
    }
}
