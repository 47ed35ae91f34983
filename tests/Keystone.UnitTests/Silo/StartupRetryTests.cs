using Keystone.Silo.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keystone.UnitTests.Silo;

/// <summary>The retry around the calls a silo's start needs: what passes is tried again, what does not fails at once.</summary>
public sealed class StartupRetryTests
{
    private static Task Run(Func<Task> call) =>
        StartupRetry.Pipeline(NullLogger.Instance, TimeSpan.Zero).ExecuteAsync(async _ => await call(), CancellationToken.None).AsTask();

    [Fact]
    public async Task A_response_timeout_and_a_storage_failure_are_tried_again_until_the_call_succeeds()
    {
        var calls = 0;
        await Run(() => ++calls switch
        {
            1 => throw new TimeoutException("Response did not arrive on time in 00:00:30"),
            2 => throw new OrleansException("Error from storage provider during ReadStateAsync"),
            _ => Task.CompletedTask,
        });
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task A_layout_problem_fails_on_the_first_call()
    {
        var calls = 0;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Run(() =>
        {
            calls++;
            throw new InvalidOperationException("the checkpoints were written with 8 partitions");
        }));
        Assert.Equal(1, calls);
        Assert.Contains("8 partitions", e.Message);
    }

    [Fact]
    public async Task A_call_that_keeps_timing_out_fails_after_the_last_retry()
    {
        var calls = 0;
        await Assert.ThrowsAsync<TimeoutException>(() => Run(() =>
        {
            calls++;
            throw new TimeoutException("Response did not arrive on time");
        }));
        Assert.Equal(StartupRetry.Retries + 1, calls);
    }
}
