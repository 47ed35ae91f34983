using Keystone.Ingest;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Checkpointing;

/// <summary>
/// One partition's fronting log writer. Reentrant so that appends from concurrent ingest requests queue up while a
/// write is under way and then go out together: one storage request per group, however many requests it answers.
/// Messages are handed to the fronting stream in position order after they are durable.
/// </summary>
[Reentrant]
public sealed class FrontingPartitionGrain(IFrontingLog log, ILogger<FrontingPartitionGrain> logger) : Grain, IFrontingPartitionGrain
{
    private List<(EventBatch[] Messages, TaskCompletionSource Done)> _queued = [];
    private bool _writing;
    private IFrontingLogWriter _writer = null!;
    private IAsyncStream<EventBatch> _stream = null!;
    private int _partition;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = (int)this.GetPrimaryKeyLong();
        _writer = await log.OpenWriterAsync(_partition, cancellationToken);
        _stream = this.GetStreamProvider(StreamNames.Provider).GetStream<EventBatch>(StreamId.Create(StreamNames.Fronting, StreamNames.PartitionKey(_partition)));
    }

    public Task Append(EventBatch[] messages)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queued.Add((messages, done));
        if (!_writing) _ = WriteQueued();
        return done.Task;
    }

    public Task<long> Head() => Task.FromResult(_writer.Last);

    public Task SealBefore(long position) => _writer.SealBeforeAsync(position);

    private async Task WriteQueued()
    {
        _writing = true;
        try
        {
            while (_queued.Count > 0)
            {
                var group = _queued;
                _queued = [];
                try
                {
                    var placed = await _writer.AppendAsync([.. group.SelectMany(g => g.Messages)]);
                    foreach (var message in placed) await _stream.OnNextAsync(message);
                    foreach (var (_, done) in group) done.SetResult();
                }
                catch (Exception e)
                {
                    // Not acknowledged: the producers retry. What did reach the log is routed when the router next
                    // reads past it (a gap in positions) and de-duplicated by event id.
                    logger.LogWarning(e, "Fronting partition {Partition}: appending {Count} requests failed", _partition, group.Count);
                    foreach (var (_, done) in group) done.SetException(e);
                }
            }
        }
        finally
        {
            _writing = false;
        }
    }
}
