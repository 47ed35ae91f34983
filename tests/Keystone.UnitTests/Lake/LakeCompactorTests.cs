using Azure.Storage.Blobs;
using Keystone.Archive;
using Keystone.Lake;
using Keystone.UnitTests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Keystone.UnitTests.Lake;

/// <summary>Where the compactor runs (what it writes is tested on Azurite, in the integration tests).</summary>
public class LakeCompactorTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 10, 30, 0, TimeSpan.Zero);

    // Never contacted: with nothing to compact, the compactor touches no blob.
    private static readonly BlobContainerClient Unreachable = new(new Uri("http://127.0.0.1:9/devstoreaccount1/lake"));

    private sealed class ListOnlySource(Func<DateTimeOffset, IReadOnlyList<HourInput>> list) : IArchiveHourSource
    {
        public Task<IReadOnlyList<HourInput>> ListAsync(DateTimeOffset hour, CancellationToken cancellationToken = default) => Task.FromResult(list(hour));

        public IAsyncEnumerable<ArchiveLine> ReadAsync(HourInput input, CancellationToken cancellationToken = default) => throw new NotSupportedException("not listed");

        public Task<bool> DeleteAsync(SegmentVersion segment, CancellationToken cancellationToken = default) => throw new NotSupportedException("not listed");

        public Task<IReadOnlyList<string>?> StageAsync(HourInput input, string directory, CancellationToken cancellationToken = default) => throw new NotSupportedException("not listed");
    }

    [Fact]
    public async Task The_silos_compactions_run_on_a_thread_of_their_own_at_a_lower_priority_than_the_pipeline()
    {
        var listed = new List<(string? Thread, int Nice)>();
        var source = new ListOnlySource(_ =>
        {
            lock (listed) listed.Add((Thread.CurrentThread.Name, ThreadNice.OfCurrentThread(elsewhere: BackgroundScheduler.Nice)));
            return [];
        });
        using var compactor = new LakeCompactor(Unreachable, source, new LakeOptions(), new FakeTimeProvider(Now));

        var report = await compactor.CompactInBackgroundAsync(Now.AddHours(-3), Now);

        Assert.Equal(0, report.Compacted);
        Assert.Equal(4, listed.Count); // 07:00 to 10:00
        Assert.All(listed, l => Assert.Equal(("keystone-lake-compact", BackgroundScheduler.Nice), l));
        // The caller (the compactor grain) goes on at the normal priority.
        Assert.Equal(0, ThreadNice.OfCurrentThread(elsewhere: 0));
    }

    [Fact]
    public async Task A_compaction_that_fails_in_the_background_fails_its_caller_and_the_next_one_runs()
    {
        var calls = 0;
        var source = new ListOnlySource(_ => ++calls == 1 ? throw new InvalidOperationException("listing failed") : []);
        using var compactor = new LakeCompactor(Unreachable, source, new LakeOptions(), new FakeTimeProvider(Now));

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => compactor.CompactInBackgroundAsync(Now.AddMinutes(-10), Now));
        Assert.Equal("listing failed", failure.Message);
        Assert.Equal(0, (await compactor.CompactInBackgroundAsync(Now.AddMinutes(-10), Now)).Compacted);
        Assert.Equal(2, calls);
    }
}
