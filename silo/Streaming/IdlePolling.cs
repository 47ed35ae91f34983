namespace Keystone.Silo.Streaming;

/// <summary>
/// When a polled queue may be read again. Orleans' pulling agent reads each queue every poll period (10 ms here) even
/// while it is empty, and with Azure Queue streams every read is a billed storage request: an idle silo with 8 queues
/// made 633 a second and kept the emulator at a third of a core. After an empty read the wait doubles, from the poll
/// period up to <c>maxWait</c>; a read that finds messages, or a message this silo enqueues itself, ends the wait.
/// Pure logic: the caller passes the time.
/// </summary>
public sealed class IdlePolling(TimeSpan pollPeriod, TimeSpan maxWait)
{
    private readonly Lock _lock = new();
    private TimeSpan _wait;
    private long _notBefore;

    /// <summary>The wait that an empty read now starts (zero while messages flow).</summary>
    public TimeSpan Wait
    {
        get
        {
            lock (_lock) return _wait;
        }
    }

    /// <summary>Whether a read at <paramref name="now"/> (timestamp ticks) goes to the queue.</summary>
    public bool ShouldRead(long now)
    {
        lock (_lock) return now >= _notBefore;
    }

    /// <summary>What the read at <paramref name="now"/> found.</summary>
    public void Read(long now, int messages)
    {
        lock (_lock)
        {
            if (messages > 0)
            {
                _wait = TimeSpan.Zero;
                _notBefore = 0;
                return;
            }
            _wait = _wait == TimeSpan.Zero ? pollPeriod : TimeSpan.FromTicks(Math.Min(maxWait.Ticks, _wait.Ticks * 2));
            _notBefore = now + _wait.Ticks;
        }
    }

    /// <summary>Something was enqueued: the next read goes to the queue.</summary>
    public void Wake()
    {
        lock (_lock)
        {
            _wait = TimeSpan.Zero;
            _notBefore = 0;
        }
    }
}
