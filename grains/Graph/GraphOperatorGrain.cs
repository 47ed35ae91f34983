using System.Globalization;
using Keystone.Aggregation;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.Pipeline;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;

namespace Keystone.Graph;

public sealed class GraphOperatorState : LoggedOperatorState;

public static class GraphTopics
{
    /// <summary>The operators' input; the shipped rule <c>real-time-graph</c> routes playback, sign-in, profile and
    /// catalogue events here.</summary>
    public const string Input = "graph-updates";
}

/// <summary>
/// The graph operator of one partition of the graph topic: parse → validate → enrich → update graph → emit (docs/architecture.md, Real-time graph),
/// with the rounds in <see cref="GraphDispatch"/> and the aggregations' exactly-once machinery
/// (<see cref="LoggedOperatorGrain{TState}"/>: log before ack, barrier, replay).
/// </summary>
[ImplicitStreamSubscription(GraphTopics.Input)]
// Restored from its checkpoint on another silo rather than migrated with its memory when its silo stops (docs/architecture.md).
[Immovable]
public sealed class GraphOperatorGrain(
    [PersistentState("graph-operator", StorageNames.State)] IPersistentState<GraphOperatorState> state,
    IOperatorLogFactory logs,
    IOptions<GraphOptions> options,
    IOptions<IngestOptions> ingestOptions,
    CheckpointMetrics checkpointMetrics,
    PipelineMetrics pipelineMetrics,
    TimeProvider time,
    ILogger<GraphOperatorGrain> logger)
    : LoggedOperatorGrain<GraphOperatorState>(state, logs, ingestOptions.Value, checkpointMetrics, pipelineMetrics, time, logger), IGraphOperatorGrain
{
    private readonly GraphOptions _options = options.Value;
    private readonly ClockSkew _clockSkew = new(ingestOptions.Value.MaxClockSkew);
    private readonly PipelineMetrics _metrics = pipelineMetrics;
    private long _events, _invalid, _edgeUpdates, _created, _duplicates, _changes;
    private DateTimeOffset _lastInvalidLog;

    protected override string InputTopic => GraphTopics.Input;
    protected override string LogName => "graph";
    protected override TimeSpan CheckpointInterval => _options.CheckpointInterval;
    protected override int CheckpointConcurrency => _options.CheckpointConcurrency;
    protected override int DispatchConcurrency => _options.DispatchConcurrency;

    protected override async Task Process(long sequence, KeystoneEvent[] events, DateTimeOffset arrivedAt)
    {
        var now = Time.GetUtcNow();
        // First/last seen: a clock far ahead would hold an edge's last seen in the future until real time caught up.
        events = _clockSkew.Correct(events, arrivedAt, out var skewed);
        if (skewed > 0) _metrics.ClockSkewed(LogName, skewed);
        var outcome = await GraphDispatch.RunAsync(Partition, sequence, events, async round =>
        {
            // A round names each node once. A node's key for the checkpoint's dirty set is built only on its first touch
            // since the last checkpoint.
            var results = await ForEach(round, (_, n) => GraphNodes.Get(GrainFactory, n.Type, n.Id).ApplyGraph(n.Batch));
            var applied = new (NodeType, string, GraphApplyResult)[results.Length];
            for (var i = 0; i < results.Length; i++)
            {
                var (type, id, _) = round[i];
                Touch(GraphSchema.KeyPrefix(type), id, results[i].ActivationId);
                applied[i] = (type, id, results[i]);
            }
            return applied;
        });

        _events += events.Length;
        _edgeUpdates += outcome.EdgeUpdates;
        _created += outcome.EdgesCreated;
        _duplicates += outcome.Duplicates;
        foreach (var (e, problem) in outcome.Invalid) Invalid(e, problem, now);

        // Emit: stream message ids and event ids derive from the log position, so a replayed delivery re-emits
        // recognisable duplicates. The changes carry the time they are emitted, after the rounds, so that their topic's
        // publish → tap lag starts at their publish; the rounds' own time is the graph stage's lag.
        var emitted = Time.GetUtcNow();
        var changes = GraphEvents.Changes(outcome, Partition, sequence, emitted);
        _changes += changes.Count;
        await Append(_options.ChangesTopic, "NORMAL", changes, emitted, sequence);
    }

    private void Invalid(KeystoneEvent e, string problem, DateTimeOffset now)
    {
        _invalid++;
        if (now - _lastInvalidLog < TimeSpan.FromSeconds(10)) return;
        _lastInvalidLog = now;
        logger.LogWarning("Graph operator {Partition}: event {EventId} ({Type}) not fully applied: {Problem}", Partition, e.EventId, e.EventType, problem);
    }

    protected override Task<Guid> CheckpointEntity(string key, long covered)
    {
        var slash = key.IndexOf('/');
        if (slash <= 0 || !GraphSchema.TryParseType(key[..slash], out var type)) throw new InvalidOperationException($"unknown graph node key '{key}'");
        return GraphNodes.Get(GrainFactory, type, key[(slash + 1)..]).CheckpointGraph(Partition, covered);
    }

    public Task CheckpointNow() => Checkpoint();

    public Task<GraphOperatorStats> GetStats() => Task.FromResult(new GraphOperatorStats(
        Partition, S.NextSequence, S.CheckpointedSequence, _events, _invalid, _edgeUpdates, _created, _duplicates + SegmentDuplicates, Checkpoints, Replayed, _changes));

    public Task ResetStats()
    {
        _events = _invalid = _edgeUpdates = _created = _duplicates = _changes = 0;
        SegmentDuplicates = Checkpoints = Replayed = 0;
        return Task.CompletedTask;
    }
}

/// <summary>The events the graph emits to its changes topic.</summary>
public static class GraphEvents
{
    public const string EdgeChangedType = "graph.edge.changed";
    public const string NodeChangedType = "graph.node.changed";
    private static readonly EventSource Source = new("keystone-graph");

    public static EventMetadata Metadata(long sequence, int partition) =>
        EventMetadata.Of(("partition", partition.ToString(CultureInfo.InvariantCulture)), ("log_sequence", sequence.ToString(CultureInfo.InvariantCulture)));

    /// <summary>What one delivery (at <paramref name="sequence"/> of <paramref name="partition"/>'s log) emits.</summary>
    public static List<KeystoneEvent> Changes(GraphDispatchOutcome outcome, int partition, long sequence, DateTimeOffset now)
    {
        // Every change of one delivery carries the same metadata, so they share one (it is immutable).
        var metadata = Metadata(sequence, partition);
        var ids = new GraphChangeIds(partition, sequence);
        var changes = new List<KeystoneEvent>(outcome.EdgeChanges.Count + outcome.NodesChanged.Count);
        foreach (var (type, id, change) in outcome.EdgeChanges) changes.Add(EdgeChanged(ids.Edge(type, id, change.Label, change.TargetId), type, id, change, metadata, now));
        foreach (var (type, id) in outcome.NodesChanged) changes.Add(NodeChanged(ids.Node(type, id), type, id, metadata, now));
        return changes;
    }

    public static KeystoneEvent EdgeChanged(Guid eventId, NodeType type, string id, EdgeChange c, EventMetadata metadata, DateTimeOffset now)
    {
        // One per changed edge, several per event: built without boxing its numbers or formatting its times to strings.
        using var payload = Payload.Build();
        payload.String("label", GraphSchema.Name(c.Label));
        payload.String("from_type", GraphSchema.Name(type));
        payload.String("from_id", id);
        payload.String("to_type", GraphSchema.Name(GraphSchema.To(c.Label)));
        payload.String("to_id", c.TargetId);
        payload.Boolean("created", c.Created);
        payload.Number("count", c.Count);
        payload.Number("weight", c.Weight);
        payload.Timestamp("first_seen", c.FirstSeen);
        payload.Timestamp("last_seen", c.LastSeen);
        return new(eventId, EdgeChangedType, now, "1.0", Source, payload.End(), metadata);
    }

    public static KeystoneEvent NodeChanged(Guid eventId, NodeType type, string id, EventMetadata metadata, DateTimeOffset now) =>
        new(eventId, NodeChangedType, now, "1.0", Source, Payload.Create(("type", GraphSchema.Name(type)), ("id", id)), metadata);
}
