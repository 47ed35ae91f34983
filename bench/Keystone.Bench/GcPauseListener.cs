using System.Diagnostics.Tracing;

namespace Keystone.Bench;

/// <summary>
/// Each garbage collection's pause in this process, so that a run can say how long its pauses were, not only their sum:
/// a pause stops the silo's threads, and every event in flight waits it out. The runtime's GC events only say when
/// to look; the pauses are the runtime's own figures for that collection (<see cref="GC.GetGCMemoryInfo(GCKind)"/>).
/// </summary>
public sealed class GcPauseListener : EventListener
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, (int Generation, double Milliseconds, long Promoted)> _pauses = [];
    private long _after;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Informational, (EventKeywords)0x1); // GC keyword
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is not "GCRestartEEEnd_V1") return;
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        if (info.Index <= Volatile.Read(ref _after)) return;
        var paused = 0.0;
        foreach (var p in info.PauseDurations) paused += p.TotalMilliseconds;
        // A background collection's two pauses are reported together once it has ended.
        lock (_lock) _pauses[info.Index] = (info.Generation, paused, info.PromotedBytes);
    }

    /// <summary>Forgets the collections so far, including those whose events have not arrived yet (they come late,
    /// from the runtime's dispatch thread: the harness's full collection right before a run would count in it).</summary>
    public void Reset()
    {
        lock (_lock)
        {
            Volatile.Write(ref _after, GC.GetGCMemoryInfo(GCKind.Any).Index);
            _pauses.Clear();
        }
    }

    /// <summary>"n collections (gen0/gen1/gen2), pause median x ms, longest y ms (gen g, promoting m MB), in all z s;
    /// promoted per collection median p MB".</summary>
    public string Describe()
    {
        lock (_lock)
        {
            if (_pauses.Count == 0) return "no collection";
            var sorted = _pauses.Values.Select(p => p.Milliseconds).Order().ToList();
            var longest = _pauses.Values.MaxBy(p => p.Milliseconds);
            var byGeneration = string.Join("/", Enumerable.Range(0, 3).Select(g => _pauses.Values.Count(p => p.Generation == g)));
            var promoted = _pauses.Values.Select(p => p.Promoted).Order().ToList();
            return $"{_pauses.Count} collections (gen0/gen1/gen2 {byGeneration}), pause median {sorted[sorted.Count / 2]:0.0} ms, longest {longest.Milliseconds:0.0} ms " +
                $"(gen{longest.Generation}, promoting {longest.Promoted / 1e6:0} MB), in all {sorted.Sum() / 1000:0.00} s; promoted per collection median {promoted[promoted.Count / 2] / 1e6:0} MB";
        }
    }
}
