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

    [Fact]
    public void The_reason_says_whether_a_retry_is_safe()
    {
        Assert.Equal("the cluster did not answer in time (Orleans' response timeout); the request may or may not have taken effect. " +
                     "Try again: events are de-duplicated by event_id, so sending them again is safe", ClusterUnavailableHandler.Describe(new TimeoutException()));
        Assert.StartsWith("the silo that holds this request's grain is unavailable (SiloUnavailableException)", ClusterUnavailableHandler.Describe(new SiloUnavailableException()));
    }
}
