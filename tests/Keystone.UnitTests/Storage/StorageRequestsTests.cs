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
}
