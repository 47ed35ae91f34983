using System.Diagnostics.Tracing;

namespace Keystone.Bench;

/// <summary>
/// Each garbage collection's pause in this process, so that a run can say how long its pauses were, not only their sum:
/// a pause stops the silo's threads, and every event in flight waits it out. The runtime's GC events only say when
/// to look; the pauses are the runtime's own figures for that collection (<see cref="GC.GetGCMemoryInfo(GCKind)"/>).
/// </summary>
/// <remarks>
/// It also times a young collection's marking through older objects that point at young ones (the card table), as
/// <c>-- gc &lt;trace&gt;</c> does from a trace: each heap reports the end of each marking stage (<c>GCMarkWithType</c>),
/// a stage lasts from the heap's previous report (or the collection's start), and the heaps mark in parallel, so the
/// longest heap's time is the pause's. At saturation that was a third to a half of a young pause (stop 49).
/// </remarks>
public sealed class GcPauseListener : EventListener
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, (int Generation, double Milliseconds, long Promoted)> _pauses = [];
    private long _after;

    // Marking through older objects (root kind 3 of GCMarkWithType), per collection by its number, the longest heap's.
    private const uint OlderRoots = 3;
    private readonly Dictionary<long, double> _markOlder = [];
    private readonly Dictionary<uint, DateTime> _heapMarked = [];
    private long _collecting = -1;
    private DateTime _startedAt;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Informational, (EventKeywords)0x1); // GC keyword
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is { } name && name.StartsWith("GCStart", StringComparison.Ordinal) && e.Payload is [var count, ..])
        {
            lock (_lock)
            {
                _collecting = Convert.ToInt64(count, System.Globalization.CultureInfo.InvariantCulture);
                _startedAt = e.TimeStamp;
                _heapMarked.Clear();
            }
            return;
        }
        if (e.EventName is "GCMarkWithType" && e.Payload is [var heapNumber, _, var rootKind, ..])
        {
            var heap = Convert.ToUInt32(heapNumber, System.Globalization.CultureInfo.InvariantCulture);
            lock (_lock)
            {
                if (_collecting < 0) return;
                var since = _heapMarked.GetValueOrDefault(heap, _startedAt);
                _heapMarked[heap] = e.TimeStamp;
                if (Convert.ToUInt32(rootKind, System.Globalization.CultureInfo.InvariantCulture) == OlderRoots)
                    _markOlder[_collecting] = Math.Max(_markOlder.GetValueOrDefault(_collecting), (e.TimeStamp - since).TotalMilliseconds);
            }
            return;
        }
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
            _markOlder.Clear();
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
            var cards = _pauses.Where(p => p.Value.Generation == 0 && _markOlder.ContainsKey(p.Key)).Select(p => _markOlder[p.Key]).Order().ToList();
            return $"{_pauses.Count} collections (gen0/gen1/gen2 {byGeneration}), pause median {sorted[sorted.Count / 2]:0.0} ms, longest {longest.Milliseconds:0.0} ms " +
                $"(gen{longest.Generation}, promoting {longest.Promoted / 1e6:0} MB), in all {sorted.Sum() / 1000:0.00} s; promoted per collection median {promoted[promoted.Count / 2] / 1e6:0} MB" +
                (cards.Count == 0 ? "" : $"; young ones' marking through older objects (cards) median {cards[cards.Count / 2]:0.0} ms");
        }
    }
}
