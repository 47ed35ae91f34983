namespace Keystone.Operations;

/// <summary>An event that could not go on, kept with why, where and how often it was tried.</summary>
/// <param name="Id">Time-ordered and prefixed with the stage: <c>ingest.20261127T040812345-1a2b3c4d</c>.</param>
/// <param name="Event">The event as it arrived (JSON text), so that it can be replayed once the cause is fixed.</param>
/// <param name="Topic">For a failure after routing: the topic whose consumer failed; a replay publishes there again
/// (not through ingest, whose routers would recognise the event). Null for events refused at ingest.</param>
[GenerateSerializer, Immutable]
public sealed record DeadLetter(
    [property: Id(0)] string Id,
    [property: Id(1)] string Stage,
    [property: Id(2)] string? EventType,
    [property: Id(3)] string? EventId,
    [property: Id(4)] string Error,
    [property: Id(5)] int Attempts,
    [property: Id(6)] DateTimeOffset At,
    [property: Id(7)] string Event,
    [property: Id(8)] DateTimeOffset? ReplayedAt,
    [property: Id(9)] string? Topic = null);

[GenerateSerializer, Immutable]
public sealed record DeadLetterPage(
    [property: Id(0)] IReadOnlyList<DeadLetter> Items,
    [property: Id(1)] string? Cursor);

public enum ReplayOutcome
{
    Replayed,
    AlreadyReplayed,
    RejectedAgain,
    NotFound,
}

[GenerateSerializer, Immutable]
public sealed record ReplayResult(
    [property: Id(0)] string Id,
    [property: Id(1)] ReplayOutcome Outcome,
    [property: Id(2)] string? Error);

/// <summary>Reads of the dead-letter store (a stateless worker over blob storage).</summary>
public interface IDeadLetterGrain : IGrainWithIntegerKey
{
    Task<DeadLetterPage> List(string? stage, string? eventType, int limit, string? cursor);

    Task<DeadLetter?> Get(string id);
}

/// <summary>Replays one dead letter; keyed by its id, so two replays of the same letter run one after the other.</summary>
public interface IDeadLetterReplayGrain : IGrainWithStringKey
{
    /// <summary>Publishes the stored event again through ingest; replaying twice publishes once.</summary>
    Task<ReplayResult> Replay();
}
