using System.Runtime.ExceptionServices;

namespace Keystone.Pipeline;

/// <summary>
/// <c>Task.WhenAll</c> for a group of <see cref="ValueTask{TResult}"/>s: one task to await for the whole group, no task
/// per member. Entity calls return Orleans' pooled completion sources as value tasks; wrapping each in a task (what a
/// <c>Task</c>-returning grain method does) or awaiting them one by one (a grain turn per member not yet complete)
/// both cost per call, where the operator only needs to resume once, when every call has answered.
/// </summary>
/// <remarks>
/// A member's source is told to signal the group when it completes; its result is read once, after all have
/// completed. Like <c>Task.WhenAll</c>, a failure surfaces only after every member has finished (the first one, in
/// member order), so no call is still running when the caller acts on it.
/// </remarks>
public static class ValueTaskGroup
{
    /// <summary>Waits for <paramref name="members"/>[0..<paramref name="count"/>) and stores their results in
    /// <paramref name="results"/> from <paramref name="offset"/> on; every member is consumed (set to default).</summary>
    public static async Task WhenAll<TResult>(ValueTask<TResult>[] members, int count, TResult[] results, int offset)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, members.Length);
        var allDone = true;
        for (var i = 0; i < count && allDone; i++) allDone = members[i].IsCompleted;
        if (!allDone)
        {
            // Counted as registered (a member may complete between the check and the registration: it is then not
            // registered), with one count held by this loop until it has looked at every member.
            var countdown = new Countdown();
            for (var i = 0; i < count; i++)
            {
                if (members[i].IsCompleted) continue;
                countdown.Add();
                members[i].ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(countdown.Signal);
            }
            countdown.Signal();
            await countdown.Task;
        }

        Exception? first = null;
        for (var i = 0; i < count; i++)
        {
            try
            {
                // Complete by now: reading the result consumes the member (a pooled source may be reused after it).
                results[offset + i] = members[i].GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                first ??= e;
            }
            members[i] = default;
        }
        if (first is not null) ExceptionDispatchInfo.Throw(first);
    }

    private sealed class Countdown
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = 1;

        public Countdown() => Signal = () =>
        {
            if (Interlocked.Decrement(ref _remaining) == 0) _done.TrySetResult();
        };

        public Action Signal { get; }

        public Task Task => _done.Task;

        public void Add() => Interlocked.Increment(ref _remaining);
    }
}
