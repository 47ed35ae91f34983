using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Keystone.Bench;

/// <summary>
/// Samples allocations in this process (the runtime's AllocationTick event fires about every 100 KB) and reports
/// which types account for them: the cheapest way to see where allocation pressure comes from.
/// </summary>
public sealed class AllocationProfiler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytes = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is not "GCAllocationTick_V4" and not "GCAllocationTick_V3" || e.Payload is null) return;
        var name = e.PayloadNames!.IndexOf("TypeName") is var i and >= 0 ? e.Payload[i] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var j and >= 0 ? Convert.ToInt64(e.Payload[j], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        _bytes.AddOrUpdate(name, amount, (_, n) => n + amount);
    }

    public void Reset() => _bytes.Clear();

    public void Report(int top = 25)
    {
        var total = _bytes.Values.Sum();
        Console.WriteLine($"Allocation samples by type (total sampled {total / 1e9:0.00} GB):");
        foreach (var (type, bytes) in _bytes.OrderByDescending(kv => kv.Value).Take(top))
            Console.WriteLine($"  {bytes * 100.0 / total,5:0.0}%  {bytes / 1e6,9:N0} MB  {type}");
    }
}
