using System.ComponentModel.DataAnnotations;

namespace Keystone.Client.Publishing;

public enum BackpressureMode
{
    /// <summary>When the queue is full, wait (asynchronously) up to <see cref="PublisherOptions.MaxBlockTime"/>, then fail.</summary>
    Wait,

    /// <summary>When the queue is full, fail at once.</summary>
    Fail,
}

/// <summary>Publisher SDK settings (docs/api.md, Publisher SDK). Bind from configuration section <c>Keystone:Publisher</c>.</summary>
public sealed class PublisherOptions
{
    public const string Section = "Keystone:Publisher";

    /// <summary>Events waiting to be sent. When full, <see cref="Backpressure"/> applies.</summary>
    [Range(1, 10_000_000)]
    public int QueueCapacity { get; set; } = 100_000;

    /// <summary>A batch is sent when it holds this many events...</summary>
    [Range(1, 100_000)]
    public int MaxBatchEvents { get; set; } = 1_000;

    /// <summary>...or this many bytes of JSON...</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxBatchBytes { get; set; } = 1024 * 1024;

    /// <summary>...or when its first event has waited this long (or on <c>FlushAsync</c>).</summary>
    public TimeSpan Linger { get; set; } = TimeSpan.FromMilliseconds(100);

    public BackpressureMode Backpressure { get; set; } = BackpressureMode.Wait;

    /// <summary>How long <c>PublishAsync</c> waits for room in a full queue before it throws.</summary>
    public TimeSpan MaxBlockTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries after the first attempt (seed: "retry up to 3 times, then to a dead-letter queue").</summary>
    [Range(0, 100)]
    public int MaxRetries { get; set; } = 3;

    /// <summary>First retry delay; each later one doubles (1 s, 2 s, 4 s ...), capped at <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Random spread applied to each delay (0.2 = ±20 %), so that many producers do not retry in step.</summary>
    [Range(0.0, 1.0)]
    public double RetryJitter { get; set; } = 0.2;

    /// <summary>Time allowed for one send attempt before it counts as a network timeout.</summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Batches in flight at once. 1 keeps per-user order across batches; more raises throughput.</summary>
    [Range(1, 64)]
    public int MaxInFlightBatches { get; set; } = 1;

    /// <summary>Where batches go after the last retry (JSON lines); <c>keystone publish</c> re-sends the file.</summary>
    [Required]
    public string DeadLetterPath { get; set; } = "keystone-deadletter.jsonl";

    /// <summary>Largest event accepted locally, as JSON (the cluster applies its own limit too).</summary>
    [Range(256, 16 * 1024 * 1024)]
    public int MaxEventBytes { get; set; } = 32 * 1024;

    /// <summary>Name reported to the cluster as the origin of batches.</summary>
    public string Origin { get; set; } = "sdk";

    public void Validate()
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(this, new ValidationContext(this), results, validateAllProperties: true))
            throw new ArgumentException($"Invalid publisher options: {string.Join("; ", results.Select(r => r.ErrorMessage))}");
        if (Linger <= TimeSpan.Zero) throw new ArgumentException("Invalid publisher options: Linger must be positive.");
        if (MaxBlockTime < TimeSpan.Zero) throw new ArgumentException("Invalid publisher options: MaxBlockTime must not be negative.");
        if (RetryBaseDelay < TimeSpan.Zero || MaxRetryDelay < RetryBaseDelay)
            throw new ArgumentException("Invalid publisher options: need 0 <= RetryBaseDelay <= MaxRetryDelay.");
        if (SendTimeout <= TimeSpan.Zero) throw new ArgumentException("Invalid publisher options: SendTimeout must be positive.");
        if (MaxEventBytes > MaxBatchBytes) throw new ArgumentException("Invalid publisher options: MaxEventBytes must not exceed MaxBatchBytes.");
    }
}
