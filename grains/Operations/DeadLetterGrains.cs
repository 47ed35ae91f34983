using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Keystone.Operations;

[StatelessWorker]
public sealed class DeadLetterGrain(DeadLetterStore store) : Grain, IDeadLetterGrain
{
    public Task<DeadLetterPage> List(string? stage, string? eventType, int limit, string? cursor) => store.ListAsync(stage, eventType, limit, cursor);

    public Task<DeadLetter?> Get(string id) => store.GetAsync(id);
}

/// <summary>
/// Re-publishes a dead letter: an event refused at ingest goes through ingest again, where it is validated again (a
/// schema fixed since lets it through); an event whose processing failed after routing goes straight back into the
/// topic whose consumer failed (the routers would recognise it), where entity grains apply it once by event id.
/// </summary>
public sealed class DeadLetterReplayGrain(DeadLetterStore store, TimeProvider time, IOptions<IngestOptions> ingest) : Grain, IDeadLetterReplayGrain
{
    public async Task<ReplayResult> Replay()
    {
        var id = this.GetPrimaryKeyString();
        if (await store.GetAsync(id) is not { } letter) return new ReplayResult(id, ReplayOutcome.NotFound, null);
        if (letter.ReplayedAt is not null) return new ReplayResult(id, ReplayOutcome.AlreadyReplayed, null);

        if (letter.Topic is { } topic)
        {
            KeystoneEvent e;
            try { e = EventJson.Parse(letter.Event); }
            catch (Exception parse) when (parse is FormatException or System.Text.Json.JsonException)
            {
                return new ReplayResult(id, ReplayOutcome.RejectedAgain, $"the stored event no longer parses: {parse.Message}");
            }
            await TopicPublisher.PublishAsync(this.GetStreamProvider(StreamNames.Provider), GrainFactory, ingest.Value, topic, "NORMAL", [e]);
            await store.UpdateAsync(letter with { Attempts = letter.Attempts + 1, ReplayedAt = time.GetUtcNow() });
            return new ReplayResult(id, ReplayOutcome.Replayed, null);
        }

        var body = Encoding.UTF8.GetBytes("[" + letter.Event + "]");
        var result = await GrainFactory.GetGrain<IIngestGrain>(0).Ingest(new IngestRequest(body, BodyFormat.JsonArray, BodyCompression.None, IngestOrigins.Replay));
        var error = result.BodyError ?? (result.Rejected.Count > 0 ? result.Rejected[0].Error : null);
        if (error is not null)
        {
            await store.UpdateAsync(letter with { Attempts = letter.Attempts + 1, Error = error });
            return new ReplayResult(id, ReplayOutcome.RejectedAgain, error);
        }
        await store.UpdateAsync(letter with { Attempts = letter.Attempts + 1, ReplayedAt = time.GetUtcNow() });
        return new ReplayResult(id, ReplayOutcome.Replayed, null);
    }
}

public static class IngestOrigins
{
    /// <summary>Events re-published from the dead-letter store: refused again, they are not stored a second time.</summary>
    public const string Replay = "replay";

    /// <summary>Events the archive's replay publishes again: they may carry the lake's replay marker.</summary>
    public const string ArchiveReplay = "archive-replay";
}
