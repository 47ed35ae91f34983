using System.Threading.Tasks.Sources;
using Keystone.Pipeline;

namespace Keystone.UnitTests.Pipeline;

public class ValueTaskGroupTests
{
    /// <summary>A reusable source like Orleans' response completion: reading its result resets it for the next use,
    /// so a member read twice (or before it completed) would throw.</summary>
    private sealed class Source : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core = new() { RunContinuationsAsynchronously = true };
        public int Reads;

        public ValueTask<int> Task => new(this, _core.Version);
        public void Complete(int value) => _core.SetResult(value);
        public void Fail(Exception e) => _core.SetException(e);

        public int GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                Reads++;
                _core.Reset();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    [Fact]
    public async Task Completes_when_the_last_member_completes_in_any_order_and_reads_each_result_once()
    {
        var sources = Enumerable.Range(0, 5).Select(_ => new Source()).ToArray();
        sources[1].Complete(10); // already complete when the group starts
        var members = sources.Select(s => s.Task).ToArray();
        var results = new int[7];

        var group = ValueTaskGroup.WhenAll(members, 5, results, 2);
        foreach (var i in new[] { 4, 0, 3 }) sources[i].Complete(i * 10);
        // Completed last: its result in place shows the group waited for it.
        sources[2].Complete(20);
        await group.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([0, 0, 0, 10, 20, 30, 40], results);
        Assert.All(sources, s => Assert.Equal(1, s.Reads));
        Assert.All(members, m => Assert.Equal(default, m));
    }

    [Fact]
    public async Task A_group_whose_members_are_all_complete_finishes_at_once()
    {
        var members = new[] { ValueTask.FromResult(1), ValueTask.FromResult(2) };
        var results = new int[2];
        var group = ValueTaskGroup.WhenAll(members, 2, results, 0);
        Assert.True(group.IsCompletedSuccessfully);
        await group;
        Assert.Equal([1, 2], results);
    }

    [Fact]
    public async Task A_failure_surfaces_only_after_every_member_finished_and_is_the_first_in_member_order()
    {
        var sources = Enumerable.Range(0, 3).Select(_ => new Source()).ToArray();
        var members = sources.Select(s => s.Task).ToArray();
        var group = ValueTaskGroup.WhenAll(members, 3, new int[3], 0);

        sources[2].Fail(new InvalidOperationException("third"));
        sources[1].Fail(new TimeoutException("second"));
        // Completed last: every member read once shows the group waited for it despite the earlier failures.
        sources[0].Complete(1);
        var error = await Assert.ThrowsAsync<TimeoutException>(() => group.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("second", error.Message);
        Assert.All(sources, s => Assert.Equal(1, s.Reads));
    }

    [Fact]
    public async Task Members_completing_on_other_threads_while_the_group_registers_never_leave_it_waiting()
    {
        for (var round = 0; round < 200; round++)
        {
            var sources = Enumerable.Range(0, 16).Select(_ => new Source()).ToArray();
            var members = sources.Select(s => s.Task).ToArray();
            var results = new int[16];
            var completing = Task.Run(() => Parallel.For(0, 16, i => sources[i].Complete(i)));
            await ValueTaskGroup.WhenAll(members, 16, results, 0).WaitAsync(TimeSpan.FromSeconds(10));
            await completing;
            Assert.Equal(Enumerable.Range(0, 16), results);
        }
    }
}
