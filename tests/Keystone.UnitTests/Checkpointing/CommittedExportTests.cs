using Keystone.Checkpointing;

namespace Keystone.UnitTests.Checkpointing;

public sealed class CommittedExportTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 13, 0, 0, TimeSpan.Zero);

    private sealed record Output(Guid EventId, string Verdict);

    private static CommittedExport<Output> New() => new(TimeSpan.FromMinutes(2), 10_000, o => o.EventId);

    [Fact]
    public void Outputs_stay_pending_until_the_checkpoint_that_sealed_them_releases_them()
    {
        var export = New();
        var a = new Output(Guid.NewGuid(), "billable");
        var b = new Output(Guid.NewGuid(), "billable");
        export.Offer(a);
        export.Offer(b);

        var sealedOnes = Assert.Single(export.Seal(T0));
        var later = new Output(Guid.NewGuid(), "billable");
        export.Offer(later);

        Assert.Equal([a, b], sealedOnes.Records.OrderBy(o => o == a ? 0 : 1));
        Assert.Equal(T0, sealedOnes.At);
        Assert.Equal(3, export.Pending);
        export.Released(sealedOnes, T0);
        // What came after the seal waits for the next checkpoint.
        Assert.Equal([later], Assert.Single(export.Seal(T0.AddSeconds(30))).Records);
        Assert.Equal(2, export.Remembered);
    }

    [Fact]
    public void An_event_whose_output_was_released_is_not_sent_again_and_a_pending_one_is_replaced()
    {
        var export = New();
        var id = Guid.NewGuid();
        export.Offer(new Output(id, "first"));
        var replacement = new Output(id, "second");
        Assert.True(export.Offer(replacement));
        var batch = Assert.Single(export.Seal(T0));
        Assert.Equal([replacement], batch.Records);

        export.Released(batch, T0);
        Assert.False(export.Offer(new Output(id, "second")));
        Assert.Empty(export.Seal(T0));
    }

    [Fact]
    public void A_decision_replacing_a_sealed_output_is_dropped_when_the_sealed_one_is_released()
    {
        var export = New();
        var id = Guid.NewGuid();
        export.Offer(new Output(id, "first"));
        var sealedOnes = Assert.Single(export.Seal(T0));
        export.Writing(sealedOnes);
        export.Offer(new Output(id, "second"));
        // The sealed one may be out already: the replacement does not go out beside it.
        Assert.Same(sealedOnes, Assert.Single(export.Seal(T0.AddSeconds(30))));

        export.Released(sealedOnes, T0);

        Assert.Empty(export.Seal(T0.AddSeconds(60)));
        Assert.Equal(0, export.Pending);
    }

    /// <summary>
    /// A checkpoint can stop between its seal and its writes (an entity answered from a new activation: the operator
    /// replays instead of covering). Its batch was never out, so the decisions the replay makes replace it, as the
    /// durable state will hold them.
    /// </summary>
    [Fact]
    public void A_batch_that_was_never_written_is_sealed_again_with_the_decisions_made_since()
    {
        var export = New();
        var id = Guid.NewGuid();
        export.Offer(new Output(id, "decided by the lost activation"));
        Assert.Single(export.Seal(T0));   // the checkpoint stops here

        var redecided = new Output(id, "decided again");
        var later = new Output(Guid.NewGuid(), "billable");
        export.Offer(redecided);
        export.Offer(later);

        var batch = Assert.Single(export.Seal(T0.AddSeconds(30)));
        Assert.Equal(T0.AddSeconds(30), batch.At);
        Assert.Equal([redecided, later], batch.Records.OrderBy(o => o == redecided ? 0 : 1));
    }

    /// <summary>
    /// A write whose answer was lost can land and still fail (the storage client gave up its tries). The next
    /// checkpoint writes the same batch again, under the same name, before what was decided since: a store that keeps
    /// one file per name then has every event once. Sealing everything pending afresh, under the next checkpoint's
    /// name, would send the first batch's events a second time.
    /// </summary>
    [Fact]
    public void A_batch_whose_write_failed_is_written_again_unchanged_and_no_event_goes_out_twice()
    {
        var export = New();
        var files = new Dictionary<DateTimeOffset, IReadOnlyList<Output>>();   // the store: writing a name again replaces that file
        var first = Enumerable.Range(0, 10).Select(_ => new Output(Guid.NewGuid(), "billable")).ToList();
        foreach (var o in first) export.Offer(o);

        var sealedFirst = Assert.Single(export.Seal(T0));
        export.Writing(sealedFirst);
        files[sealedFirst.At] = sealedFirst.Records;   // it landed; the answer did not come back, so it is not released

        var second = Enumerable.Range(0, 5).Select(_ => new Output(Guid.NewGuid(), "billable")).ToList();
        foreach (var o in second) export.Offer(o);
        export.Offer(new Output(first[0].EventId, "decided again"));   // a replay re-decided one of the sealed events
        Assert.Equal(15, export.Pending);

        var batches = export.Seal(T0.AddSeconds(30));
        Assert.Equal(2, batches.Count);
        Assert.Same(sealedFirst, batches[0]);
        Assert.Equal(T0.AddSeconds(30), batches[1].At);
        foreach (var batch in batches)
        {
            export.Writing(batch);
            files[batch.At] = batch.Records;
            export.Released(batch, T0.AddSeconds(31));
        }

        var sent = files.Values.SelectMany(f => f).ToList();
        Assert.Equal(first.Concat(second).Select(o => o.EventId).Order(), sent.Select(o => o.EventId).Order());
        Assert.Equal("billable", sent.Single(o => o.EventId == first[0].EventId).Verdict);
        Assert.Empty(export.Seal(T0.AddSeconds(60)));
        Assert.Equal(0, export.Pending);
    }

    [Fact]
    public void Outputs_restored_from_the_export_are_not_sent_again_until_they_leave_the_horizon()
    {
        var export = New();
        var old = Guid.NewGuid();
        var recent = Guid.NewGuid();
        export.Restore([(old, T0), (recent, T0.AddMinutes(2))]);

        Assert.False(export.Offer(new Output(recent, "billable")));
        // Releasing something three minutes later moves the horizon past the older one.
        export.Offer(new Output(Guid.NewGuid(), "billable"));
        export.Released(Assert.Single(export.Seal(T0.AddMinutes(3))), T0.AddMinutes(3));
        Assert.True(export.Offer(new Output(old, "billable")));
    }

    public enum CrashPoint { None, AfterSeal, AfterEntityWrites, AfterExportWrite, AfterOperatorCheckpoint }

    /// <summary>
    /// The protocol end to end on in-memory fakes: an entity decides each event (its verdict depends on the
    /// activation, as a fraud verdict depends on the order events arrive in) and recalls what it decided for a repeat;
    /// the operator offers every decision, and checkpoints by sealing, writing the entity, writing the export, then
    /// recording its position. Whatever the crash point, every event is exported exactly once, with the verdict the
    /// entity's durable state holds.
    /// </summary>
    [Theory]
    [InlineData(CrashPoint.None)]
    [InlineData(CrashPoint.AfterSeal)]
    [InlineData(CrashPoint.AfterEntityWrites)]
    [InlineData(CrashPoint.AfterExportWrite)]
    [InlineData(CrashPoint.AfterOperatorCheckpoint)]
    public void A_crash_anywhere_in_a_checkpoint_exports_every_event_once_with_its_durable_verdict(CrashPoint crash)
    {
        var events = Enumerable.Range(0, 40).Select(_ => Guid.NewGuid()).ToList();
        var entity = new FakeEntity();
        var exported = new Dictionary<DateTimeOffset, IReadOnlyList<Output>>();   // one file per name
        var export = New();
        var checkpointed = 0;   // the operator's position: events before it are covered
        var now = T0;

        void Deliver(int from, int to)
        {
            for (var i = from; i < to; i++) export.Offer(entity.Apply(events[i]));
        }

        bool Checkpoint(int position, CrashPoint at)
        {
            now = now.AddSeconds(30);
            var sealedOnes = export.Seal(now);
            if (at == CrashPoint.AfterSeal) return false;
            entity.Write();
            if (at == CrashPoint.AfterEntityWrites) return false;
            foreach (var batch in sealedOnes)
            {
                export.Writing(batch);
                exported[batch.At] = batch.Records;
                export.Released(batch, now);
            }
            if (at == CrashPoint.AfterExportWrite) return false;
            checkpointed = position;
            return at != CrashPoint.AfterOperatorCheckpoint;
        }

        Deliver(0, 15);
        Assert.True(Checkpoint(15, CrashPoint.None));
        Deliver(15, 30);
        if (!Checkpoint(30, crash))
        {
            // The crash: memory is gone; the export is read back, the entity restarts from its durable state, and the
            // log is replayed from the operator's last position (the fronting log may replay from further back).
            entity.Crash();
            export = New();
            export.Restore(exported.SelectMany(f => f.Value.Select(o => (o.EventId, f.Key))));
            Deliver(crash == CrashPoint.AfterOperatorCheckpoint ? checkpointed : 0, 30);
        }
        Deliver(30, 40);
        Assert.True(Checkpoint(40, CrashPoint.None));

        var sent = exported.Values.SelectMany(f => f).ToList();
        Assert.Equal(events.Order(), sent.Select(o => o.EventId).Order());
        foreach (var output in sent) Assert.Equal(entity.Durable[output.EventId], output.Verdict);
    }

    /// <summary>An entity whose verdicts depend on its activation and which recalls its recorded verdict for repeats.</summary>
    private sealed class FakeEntity
    {
        private Dictionary<Guid, string> _memory = [];
        private int _activation;

        public Dictionary<Guid, string> Durable { get; private set; } = [];

        public Output Apply(Guid id)
        {
            if (!_memory.TryGetValue(id, out var verdict)) _memory[id] = verdict = $"decided by activation {_activation}";
            return new Output(id, verdict);
        }

        public void Write() => Durable = new Dictionary<Guid, string>(_memory);

        public void Crash()
        {
            _memory = new Dictionary<Guid, string>(Durable);
            _activation++;
        }
    }
}
