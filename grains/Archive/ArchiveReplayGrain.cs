using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Topics;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Keystone.Archive;

/// <summary>
/// Replays the archive: reads every blob of the hours in range, keeps the events whose time is in range (and type
/// matches), and publishes them — through ingest into the fronting stream (validated and routed again; routers and
/// entity grains drop what they have seen, by event id), or straight into one topic.
/// </summary>
[StatelessWorker(1)]
public sealed class ArchiveReplayGrain(Keystone.Lake.LakeReplayReader reader, IOptions<ArchiveOptions> archive, IOptions<IngestOptions> ingest) : Grain, IArchiveReplayGrain
{
    private const int Chunk = 1_000;

    public async Task<ArchiveReplayResult> Replay(ArchiveReplayRequest request)
    {
        if (request.To <= request.From) throw new ArgumentException("'to' must be later than 'from'.", nameof(request));
        if (request.To - request.From > archive.Value.MaxReplayRange)
            throw new ArgumentException($"a replay covers at most {archive.Value.MaxReplayRange} (Keystone:Archive:MaxReplayRange).", nameof(request));
        if (request.ToTopic is { } t && !StreamNames.IsValidTopicName(t)) throw new ArgumentException($"'{t}' is not a valid topic name.", nameof(request));

        // Each hour from whichever form it is in: raw segments, or Parquet where retention deleted them.
        var progress = new Keystone.Lake.LakeReplayReader.Progress();
        long read = 0, matched = 0, published = 0, refused = 0;
        var pending = new List<KeystoneEvent>(Chunk);
        await foreach (var line in reader.ReadAsync(request.From, request.To, progress))
        {
            read++;
            if (line.Event is not { } e)
            {
                refused++;
                continue;
            }
            if (e.Timestamp < request.From || e.Timestamp >= request.To) continue;
            if (request.EventType is { } type && e.EventType != type) continue;
            matched++;
            pending.Add(e);
            if (pending.Count == Chunk) (published, refused) = Add(await Publish(pending, request.ToTopic), published, refused);
        }
        if (pending.Count > 0) (published, refused) = Add(await Publish(pending, request.ToTopic), published, refused);
        return new ArchiveReplayResult(progress.Files, read, matched, published, refused);
    }

    private static (long, long) Add((int Published, int Refused) r, long published, long refused) => (published + r.Published, refused + r.Refused);

    private async Task<(int Published, int Refused)> Publish(List<KeystoneEvent> events, string? topic)
    {
        var batch = events.ToList();
        events.Clear();
        if (topic is null)
        {
            // Marked: where the lake is the sealed fronting log, their second acceptance is not sealed into it again.
            var body = Encoding.UTF8.GetBytes(string.Join('\n', batch.Select(e => EventJson.Serialize(e with { Metadata = e.Metadata.With(SealedLogLake.ReplayedKey, "true") }))));
            var result = await GrainFactory.GetGrain<IIngestGrain>(0).Ingest(new IngestRequest(body, BodyFormat.Ndjson, BodyCompression.None, Keystone.Operations.IngestOrigins.ArchiveReplay));
            return (result.Accepted + result.Duplicates, result.Rejected.Count);
        }
        await TopicPublisher.PublishAsync(this.GetStreamProvider(StreamNames.Provider), GrainFactory, ingest.Value, topic, "LOW", batch);
        return (batch.Count, 0);
    }
}
