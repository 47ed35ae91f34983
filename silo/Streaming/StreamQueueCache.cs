using Orleans.Runtime;
using Orleans.Streams;

namespace Keystone.Silo.Streaming;

/// <summary>
/// A pulling agent's cache that keeps each stream's messages apart and lets a message go as soon as every cursor of
/// its own stream has passed it.
/// </summary>
/// <remarks>
/// Orleans' <c>SimpleQueueCache</c> keeps one list for all the streams of a queue and lets go of its oldest tenth only
/// when no cursor of any stream is still in it. A queue carries many streams, and one slow consumer (the graph
/// operator, mid-round) then held every other stream's delivered messages, and with each one the whole input batch
/// its events came from: at saturation the cache stayed full (512 messages a queue), and the events it held were about
/// two fifths of what each young collection promoted (a heap dump: 108,000 of 114,000 promoted events were dead a
/// moment later). Here a delivered message is gone at the agent's next read.
/// <para>
/// The agent calls the cache and the cursors from its own turns only, so nothing here is locked. Back-pressure is the
/// same as Orleans': past <c>cacheSize</c> messages kept (now only messages some cursor of their stream has not
/// passed), the agent stops reading its queue. A stream with no cursor keeps nothing: the agent makes a cursor for a
/// new stream before it looks at the cache again (as it does for Orleans' cache, whose items without cursors are
/// purged as well).
/// </para>
/// </remarks>
public sealed class StreamQueueCache(int cacheSize) : IQueueCache
{
    private readonly Dictionary<StreamId, Lane> _lanes = [];
    private int _count;

    /// <summary>Messages kept: some cursor of their stream has not passed them.</summary>
    public int Count => _count;

    /// <summary>Streams with messages or cursors.</summary>
    public int Streams => _lanes.Count;

    // As Orleans' cache: a tenth of the capacity per read, so one read cannot overshoot it by much.
    public int GetMaxAddCount() => Math.Max(1, cacheSize / 10);

    public bool IsUnderPressure() => _count >= cacheSize;

    public void AddToCache(IList<IBatchContainer> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        foreach (var message in messages)
        {
            if (message is null) continue;
            LaneOf(message.StreamId).Add(message);
            _count++;
        }
    }

    public bool TryPurgeFromCache(out IList<IBatchContainer> purgedItems)
    {
        List<IBatchContainer>? purged = null;
        List<StreamId>? empty = null;
        foreach (var (stream, lane) in _lanes)
        {
            _count -= lane.Purge(ref purged);
            if (lane.IsEmpty) (empty ??= []).Add(stream);
        }
        if (empty is not null)
            foreach (var stream in empty) _lanes.Remove(stream);
        purgedItems = purged ?? (IList<IBatchContainer>)[];
        return purged is not null;
    }

    public IQueueCacheCursor GetCacheCursor(StreamId streamId, StreamSequenceToken? token) => LaneOf(streamId).Open(token);

    private Lane LaneOf(StreamId stream)
    {
        if (!_lanes.TryGetValue(stream, out var lane)) _lanes[stream] = lane = new Lane();
        return lane;
    }

    /// <summary>One stream's messages, oldest first, numbered from 0 for the stream's life in this cache.</summary>
    private sealed class Lane
    {
        private readonly List<IBatchContainer> _messages = [];
        private readonly List<Cursor> _cursors = [];
        // The number of the message at _messages[_head]; messages before _head are already gone.
        private long _first;
        private int _head;

        public long First => _first;

        public long End => _first + (_messages.Count - _head);

        public bool IsEmpty => _messages.Count == _head && _cursors.Count == 0;

        public void Add(IBatchContainer message) => _messages.Add(message);

        public IBatchContainer? At(long number) => number >= _first && number < End ? _messages[_head + (int)(number - _first)] : null;

        /// <summary>A cursor at the first message at or after <paramref name="token"/>; with no token, where the next
        /// message will be (the agent asks so when it starts a consumer over after an error).</summary>
        public Cursor Open(StreamSequenceToken? token)
        {
            var start = End;
            if (token is not null)
            {
                for (var n = _first; n < End; n++)
                    if (!At(n)!.SequenceToken.Older(token))
                    {
                        start = n;
                        break;
                    }
            }
            var cursor = new Cursor(this, start);
            _cursors.Add(cursor);
            return cursor;
        }

        public void Close(Cursor cursor) => _cursors.Remove(cursor);

        /// <summary>Lets go of the messages every cursor has passed (all of them when there is no cursor).</summary>
        public int Purge(ref List<IBatchContainer>? purged)
        {
            var keepFrom = End;
            foreach (var c in _cursors) keepFrom = Math.Min(keepFrom, c.Next);
            var count = (int)Math.Max(0, keepFrom - _first);
            if (count == 0) return 0;
            purged ??= [];
            for (var i = 0; i < count; i++)
            {
                purged.Add(_messages[_head + i]);
                // The list's slot would otherwise keep the message (and its events) alive until it is compacted.
                _messages[_head + i] = null!;
            }
            _head += count;
            _first += count;
            if (_head == _messages.Count)
            {
                _messages.Clear();
                _head = 0;
            }
            else if (_head >= 64 && _head >= _messages.Count / 2)
            {
                _messages.RemoveRange(0, _head);
                _head = 0;
            }
            return count;
        }
    }

    /// <summary>A consumer's place in its stream: the number of the next message to hand it.</summary>
    private sealed class Cursor(Lane lane, long next) : IQueueCacheCursor
    {
        private IBatchContainer? _current;
        private bool _closed;

        public long Next { get; private set; } = next;

        public IBatchContainer? GetCurrent(out Exception? exception)
        {
            exception = null;
            return _current;
        }

        public bool MoveNext()
        {
            // Never behind what the lane keeps: it keeps everything from the slowest open cursor on.
            if (Next < lane.First) Next = lane.First;
            _current = _closed ? null : lane.At(Next);
            if (_current is null) return false;
            Next++;
            return true;
        }

        // New messages of the stream are found by number: nothing to re-aim.
        public void Refresh(StreamSequenceToken token)
        {
        }

        // Nothing keeps a failed message: the operators retry and dead-letter by themselves (see the failure handler).
        public void RecordDeliveryFailure()
        {
        }

        public void Dispose()
        {
            if (_closed) return;
            _closed = true;
            _current = null;
            lane.Close(this);
        }
    }
}
