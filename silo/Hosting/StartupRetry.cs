using Polly;
using Polly.Retry;

namespace Keystone.Silo.Hosting;

/// <summary>
/// The grain calls a silo's start cannot do without (the checkpoint coordinator's <c>Start</c>), retried when they
/// fail for a reason that passes. The coordinator's activation reads its state from blob storage; the storage emulator
/// has been seen to leave requests unanswered for 11–12 s, long enough for the activation's read, and with it the
/// call, to miss Orleans' 30 s response timeout. Without a retry the whole silo then fails to start. What does not pass
/// (a partition layout the checkpoints were not written with, an <see cref="InvalidOperationException"/>) fails at once.
/// </summary>
public static class StartupRetry
{
    public const int Retries = 3;

    public static ResiliencePipeline Pipeline(ILogger logger, TimeSpan delay, int retries = Retries) =>
        new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                // Orleans' response timeout, and a storage provider's failure as the activation reports it.
                ShouldHandle = new PredicateBuilder().Handle<TimeoutException>().Handle<OrleansException>(),
                MaxRetryAttempts = retries,
                Delay = delay,
                BackoffType = DelayBackoffType.Constant,
                OnRetry = args =>
                {
                    logger.LogWarning(args.Outcome.Exception, "A call the silo's start needs failed (attempt {Attempt} of {Attempts}); trying again in {Delay}",
                        args.AttemptNumber + 1, retries + 1, args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
}
