using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Analysis;
using Microsoft.Diagnostics.Tracing.Analysis.GC;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Keystone.Bench;

/// <summary>
/// What each garbage collection of a trace did, from the runtime's own GC events (TraceEvent's GC analysis, what
/// PerfView's GCStats shows): its pause, what it promoted from each generation, and how long its marking took by root
/// kind. A young collection's pause is its marking plus its copying of survivors; marking "older" is the card-table
/// scan of old objects that point at young ones, "stack" the threads' roots, "handles" GC handles (pinned buffers,
/// dependent handles), so the table says which kind of survivor a pause is paying for.
/// </summary>
/// <remarks>Take the trace with the GC keyword at verbose level, e.g.
/// <c>dotnet-trace collect -p PID --providers Microsoft-Windows-DotNETRuntime:0x1:5 -o gc.nettrace</c>.</remarks>
public static class GcReport
{
    private static readonly string[] RootNames = ["stack", "finalize", "handles", "older", "sizedref", "overflow"];

    public static void Print(string path, int? processId = null)
    {
        using var source = new EventPipeEventSource(path);
        source.NeedLoadedDotNetRuntimes();
        source.Process();
        foreach (var process in source.Processes())
        {
            if (processId is { } id && process.ProcessID != id) continue;
            var runtime = process.LoadedDotNetRuntime();
            if (runtime is null || runtime.GC.GCs.Count == 0) continue;
            var gcs = runtime.GC.GCs.Where(g => g.IsComplete).ToList();
            Console.WriteLine($"process {process.ProcessID} {process.Name}: {gcs.Count} collections, {gcs.Sum(g => g.PauseDurationMSec) / 1000:0.00} s paused");
            Console.WriteLine("   # gen type                reason           pause  suspend promoted(g0/g1/g2 MB) gen0 after  gen2 after | mark ms by root: " + string.Join(" ", RootNames));
            foreach (var gc in gcs)
            {
                var marks = Enumerable.Range(0, RootNames.Length).Select(r => MaxMark(gc, r));
                Console.WriteLine($"{gc.Number,4} {gc.Generation,3} {gc.Type,-19} {gc.Reason,-16} {gc.PauseDurationMSec,6:0.0} {gc.SuspendDurationMSec,7:0.0} " +
                    $"{gc.GenPromotedMB(Gens.Gen0),7:0.0}/{gc.GenPromotedMB(Gens.Gen1):0.0}/{gc.GenPromotedMB(Gens.Gen2):0.0}" +
                    $"{gc.GenSizeAfterMB(Gens.Gen0),12:0.0} {gc.GenSizeAfterMB(Gens.Gen2),11:0.0} | " + string.Join(" ", marks.Select(m => $"{m,6:0.0}")));
            }
            // The rest of a pause is the plan, relocation and compaction of what survived, and the suspension.
            var young = gcs.Where(g => g.Generation < 2).ToList();
            if (young.Count > 0)
                Console.WriteLine($"young collections: {young.Count}, pause median {Median(young.Select(g => g.PauseDurationMSec)):0.0} ms, promoted median {Median(young.Select(g => g.PromotedMB)):0.0} MB, " +
                    $"mark older (cards) median {Median(young.Select(g => MaxMark(g, 3))):0.0} ms, mark stack median {Median(young.Select(g => MaxMark(g, 0))):0.0} ms, handles {Median(young.Select(g => MaxMark(g, 2))):0.0} ms");
        }
    }

    // The heaps mark in parallel: the longest heap's time is the pause's.
    private static double MaxMark(TraceGC gc, int root) =>
        // A root kind the runtime did not time is reported as -1: nothing to add to the pause.
        gc.PerHeapMarkTimes is { Count: > 0 } perHeap ? Math.Max(0, perHeap.Values.Max(i => i.MarkTimes.Length > root ? i.MarkTimes[root] : 0)) : 0;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}
