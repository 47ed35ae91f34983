using Keystone.Silo.Gateway;
using Orleans.Runtime;

namespace Keystone.UnitTests.Silo;

public class ClusterUnavailableHandlerTests
{
    [Fact]
    public void A_timeout_or_a_lost_silo_anywhere_in_the_chain_is_transient()
    {
        var timeout = new TimeoutException("Response did not arrive on time");
        Assert.Same(timeout, ClusterUnavailableHandler.Transient(timeout));
        Assert.Same(timeout, ClusterUnavailableHandler.Transient(new InvalidOperationException("outer", timeout)));
        Assert.Same(timeout, ClusterUnavailableHandler.Transient(new AggregateException(timeout)));
        var lost = new SiloUnavailableException("gone");
        Assert.Same(lost, ClusterUnavailableHandler.Transient(new AggregateException(lost)));
    }

    [Fact]
    public void Anything_else_stays_an_error()
    {
        Assert.Null(ClusterUnavailableHandler.Transient(new InvalidOperationException("a bug")));
        Assert.Null(ClusterUnavailableHandler.Transient(new NullReferenceException()));
        // Two failures at once are not one transient cause.
        Assert.Null(ClusterUnavailableHandler.Transient(new AggregateException(new TimeoutException(), new InvalidOperationException())));
    }

    // The Azure SDK's wording of its per-try timeout, and of its last retry (seen in FaultTests' network cut).
    private static TaskCanceledException TryTimedOut() =>
        new("The operation was cancelled because it exceeded the configured timeout of 0:00:02. Network timeout can be adjusted in ClientOptions.Retry.NetworkTimeout.");

    [Fact]
    public void Storage_that_did_not_answer_or_failed_on_its_side_is_a_storage_failure()
    {
        Assert.NotNull(ClusterUnavailableHandler.StorageFailure(TryTimedOut()));
        Assert.NotNull(ClusterUnavailableHandler.StorageFailure(new AggregateException("Retry failed after 2 tries.", TryTimedOut(), TryTimedOut())));
        Assert.NotNull(ClusterUnavailableHandler.StorageFailure(new Azure.RequestFailedException(503, "The server is busy.")));
        Assert.NotNull(ClusterUnavailableHandler.StorageFailure(new Azure.RequestFailedException(0, "No response")));
        Assert.NotNull(ClusterUnavailableHandler.StorageFailure(new HttpRequestException("Connection refused")));
        var described = ClusterUnavailableHandler.DescribeStorage(ClusterUnavailableHandler.StorageFailure(new AggregateException(TryTimedOut()))!);
        Assert.StartsWith("the storage this request needs failed or did not answer (TaskCanceledException: The operation was cancelled because it exceeded the configured timeout of 0:00:02.", described);
    }

    [Fact]
    public void Storage_answers_about_the_request_and_the_callers_own_cancellation_are_not()
    {
        Assert.Null(ClusterUnavailableHandler.StorageFailure(new Azure.RequestFailedException(404, "The specified blob does not exist.")));
        Assert.Null(ClusterUnavailableHandler.StorageFailure(new Azure.RequestFailedException(409, "The specified blob already exists.")));
        Assert.Null(ClusterUnavailableHandler.StorageFailure(new TaskCanceledException("A task was canceled.")));
        Assert.Null(ClusterUnavailableHandler.StorageFailure(new AggregateException(TryTimedOut(), new Azure.RequestFailedException(403, "Forbidden"))));
        Assert.Null(ClusterUnavailableHandler.StorageFailure(new TimeoutException("Response did not arrive on time")));
    }

    [Fact]
    public void The_reason_says_whether_a_retry_is_safe()
    {
        Assert.Equal("the cluster did not answer in time (Orleans' response timeout); the request may or may not have taken effect. " +
                     "Try again: events are de-duplicated by event_id, so sending them again is safe", ClusterUnavailableHandler.Describe(new TimeoutException()));
        Assert.StartsWith("the silo that holds this request's grain is unavailable (SiloUnavailableException)", ClusterUnavailableHandler.Describe(new SiloUnavailableException()));
    }
}
