using System.Diagnostics.Tracing;
using System.Text.RegularExpressions;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Keystone.Bench;

/// <summary>
/// Where a run's allocations and CPU go, by pipeline stage: an EventPipe session on this process (what
/// <c>dotnet-trace collect --profile gc-verbose,cpu-sampling</c> records) for the length of the run, then each
/// allocation sample (about one per 100 KB) and each CPU sample is put under the Keystone code it came from.
/// </summary>
/// <remarks>
/// Two groupings, because each answers a different question. The <b>stage</b> is the outermost Keystone frame on the
/// stack: the grain method or operator turn that started the work, so Orleans' cost of a call the graph operator
/// makes lands on the graph. The <b>code</b> is the innermost Keystone namespace: whose code allocated. Stacks with no
/// Keystone frame at all are Orleans and the runtime on their own threads: receiving and answering grain calls,
/// pulling stream queues. CPU counts only samples of threads running managed code (the sampler's "managed" samples);
/// the GC's own threads and the kernel are not in it.
/// </remarks>
public sealed partial class StageProfile : IAsyncDisposable
{
    private readonly EventPipeSession _session;
    private readonly Task _copy;
    private readonly string _path;

    private StageProfile(string path)
    {
        _path = path;
        // GC (1) at verbose level gives the allocation ticks; Loader (8) and JIT (0x10) name code compiled during the run.
        EventPipeProvider[] providers =
        [
            new("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, 0x1 | 0x8 | 0x10),
            new("Microsoft-DotNETCore-SampleProfiler", EventLevel.Informational),
        ];
        _session = new DiagnosticsClient(Environment.ProcessId).StartEventPipeSession(providers, requestRundown: true, circularBufferMB: 1024);
        var file = File.Create(path);
        _copy = Task.Run(async () =>
        {
            await using (file) await _session.EventStream.CopyToAsync(file);
        });
    }

    public static StageProfile Start(string path) => new(path);

    public async ValueTask DisposeAsync()
    {
        await _session.StopAsync(CancellationToken.None);
        await _copy;
        _session.Dispose();
        Report(_path);
    }

    /// <param name="detail">"stage|type" (substrings): also print the call stacks that allocated that type in that stage;
    /// "stage|CPU": the stacks sampled running in it.</param>
    /// <param name="from">Seconds from the trace's start: only what happened from then on (a start-up's first burst).</param>
    /// <param name="to">Seconds from the trace's start: only what happened before then.</param>
    public static void Report(string path, int top = 20, string? detail = null, double from = 0, double to = double.MaxValue)
    {
        var (detailStage, detailType) = detail?.Split('|') is [var ds, var dt] ? (ds, dt) : (null, null);
        var detailStacks = new Dictionary<string, double>();
        var etlx = TraceLog.CreateFromEventPipeDataFile(path, options: new TraceLogOptions { ContinueOnError = true });
        using var log = new TraceLog(etlx);
        var source = log.Events.GetSource();
        var bytesByStage = new Dictionary<string, double>();
        var bytesByCode = new Dictionary<string, double>();
        var typesByStage = new Dictionary<string, Dictionary<string, double>>();
        var cpuByStage = new Dictionary<string, double>();
        var cpuByCode = new Dictionary<string, double>();
        var waitingByStage = new Dictionary<string, double>();
        double allocated = 0, samples = 0, waiting = 0;
        // Per second of the trace: managed samples running, and methods the JIT compiled (a cold process's cost).
        var running = new SortedDictionary<int, int>();
        var jitted = new SortedDictionary<int, int>();
        bool InWindow(TraceEvent data) => data.TimeStampRelativeMSec >= from * 1000 && data.TimeStampRelativeMSec < to * 1000;

        source.Clr.MethodJittingStarted += data =>
        {
            var second = (int)(data.TimeStampRelativeMSec / 1000);
            jitted[second] = jitted.GetValueOrDefault(second) + 1;
        };
        source.Clr.GCAllocationTick += data =>
        {
            if (!InWindow(data)) return;
            var (stage, code) = Attribute(data.CallStack());
            double amount = data.AllocationAmount64;
            allocated += amount;
            Add(bytesByStage, stage, amount);
            Add(bytesByCode, code, amount);
            Add(typesByStage.TryGetValue(stage, out var types) ? types : typesByStage[stage] = [], data.TypeName ?? "?", amount);
            if (detailStage is not null && stage.Contains(detailStage, StringComparison.Ordinal) && (data.TypeName ?? "").Contains(detailType!, StringComparison.Ordinal))
                Add(detailStacks, Frames(data.CallStack(), 8), amount);
        };
        // The sampler's parser is not public in this TraceEvent: its events come through as they are, with a "Type"
        // of 2 for a thread that was running managed code (1: in native code or waiting).
        source.AllEvents += data =>
        {
            if (data.ProviderName != "Microsoft-DotNETCore-SampleProfiler" || Convert.ToInt32(data.PayloadByName("Type") ?? 0, System.Globalization.CultureInfo.InvariantCulture) != 2) return;
            var second = (int)(data.TimeStampRelativeMSec / 1000);
            running[second] = running.GetValueOrDefault(second) + 1;
            if (!InWindow(data)) return;
            if (WaitOf(data.CallStack()) is { } wait)
            {
                waiting++;
                Add(waitingByStage, $"{wait} in {Attribute(data.CallStack()).Stage}", 1);
                return;
            }
            var (stage, code) = Attribute(data.CallStack());
            if (detailStage is not null && detailType == "CPU" && stage.Contains(detailStage, StringComparison.Ordinal))
                Add(detailStacks, Frames(data.CallStack(), 8), 1);
            samples++;
            Add(cpuByStage, stage, 1);
            Add(cpuByCode, code, 1);
        };
        source.Process();

        if (jitted.Count > 0)
        {
            Console.WriteLine("  timeline (second of the trace: managed samples running / methods compiled):");
            Console.WriteLine("    " + string.Join("  ", running.Keys.Union(jitted.Keys).Order().Select(s => $"{s}: {running.GetValueOrDefault(s)}/{jitted.GetValueOrDefault(s)}")));
        }
        if (from > 0 || to < double.MaxValue) Console.WriteLine($"  what follows is from {from:0.#} s to {(to < double.MaxValue ? $"{to:0.#} s" : "the end")} of the trace");

        Console.WriteLine($"  stage profile ({path}): {allocated / 1e6:N0} MB of allocation sampled, {samples:N0} CPU samples of managed code");
        if (waiting > 0)
        {
            // The sampler counts them as running managed code, but it cannot tell a spin on a core from a thread that
            // is blocked or has no core (a low-priority thread that spins is descheduled for long stretches).
            Console.WriteLine($"  {waiting:N0} more samples ({waiting * 100 / (waiting + samples):0.0}%) caught threads waiting (a spin, a sleep or a blocking wait); they are not in the CPU shares below:");
            foreach (var (stage, count) in waitingByStage.OrderByDescending(kv => kv.Value).Take(8))
                Console.WriteLine($"    {count * 100 / waiting,5:0.0}%  {stage}");
        }
        Console.WriteLine("  allocated bytes by stage (outermost grain, else outermost Keystone frame), with the largest types in it:");
        foreach (var (stage, bytes) in bytesByStage.OrderByDescending(kv => kv.Value).Take(top))
        {
            var types = string.Join(", ", typesByStage[stage].OrderByDescending(kv => kv.Value).Take(4).Select(kv => $"{Short(kv.Key)} {kv.Value * 100 / bytes:0}%"));
            Console.WriteLine($"    {bytes * 100 / allocated,5:0.0}%  {stage}  ({types})");
        }
        if (detailStage is not null)
        {
            var total = detailStacks.Values.Sum();
            Console.WriteLine(detailType == "CPU"
                ? $"  stacks sampled running in '{detailStage}' ({total * 100 / samples:0.0}% of all CPU samples):"
                : $"  stacks allocating '{detailType}' in '{detailStage}' ({total * 100 / allocated:0.0}% of all):");
            foreach (var (stack, bytes) in detailStacks.OrderByDescending(kv => kv.Value).Take(top))
                Console.WriteLine($"    {bytes * 100 / total,5:0.0}%  {stack}");
        }
        Print("allocated bytes by code (innermost Keystone namespace)", bytesByCode, allocated, top);
        Print("CPU by stage (outermost grain, else outermost Keystone frame)", cpuByStage, samples, top);
        Print("CPU by code (innermost Keystone namespace)", cpuByCode, samples, top);
    }

    private static void Print(string title, Dictionary<string, double> shares, double total, int top)
    {
        Console.WriteLine($"  {title}:");
        foreach (var (key, value) in shares.OrderByDescending(kv => kv.Value).Take(top))
            Console.WriteLine($"    {value * 100 / total,5:0.0}%  {key}");
    }

    private static void Add(Dictionary<string, double> into, string key, double amount) =>
        into[key] = into.GetValueOrDefault(key) + amount;

    private const string NoKeystone = "(no Keystone frame: Orleans and the runtime)";

    // Walks from the leaf to the root: the first Keystone namespace seen is the code, the last Keystone method the stage.
    private static (string Stage, string Code) Attribute(TraceCallStack? stack)
    {
        string? code = null, outermost = null, grain = null, orleans = null;
        for (var frame = stack; frame is not null; frame = frame.Caller)
        {
            var name = frame.CodeAddress.FullMethodName;
            if (string.IsNullOrEmpty(name)) continue;
            if (name.StartsWith("OrleansCodeGen.", StringComparison.Ordinal)) name = name["OrleansCodeGen.".Length..];
            if (name.StartsWith("Orleans.", StringComparison.Ordinal)) orleans = Method(name);
            if (!name.StartsWith("Keystone.", StringComparison.Ordinal)) continue;
            code ??= Namespace(name);
            var method = Method(name);
            outermost = method;
            if (StageGrain(method) is { } type) grain = type;
        }
        // The outermost concrete grain is the stage; else the outermost Keystone method (state reads of activations,
        // the stream queues' receivers); without a Keystone frame, the outermost Orleans one says which machinery it
        // was (messaging, scheduling, placement).
        return (grain ?? outermost ?? (orleans is null ? NoKeystone : $"(Orleans) {orleans}"), code ?? NoKeystone);
    }

    // The wait a sample caught its thread in (a spin, a sleep, a blocking wait, a suspension for a collection among its
    // innermost managed frames), or null when the thread was working. Counted as work, the lake's seal thread (nice 10,
    // BackgroundScheduler) was a sixth of a saturation run's samples while `pidstat -t` gave it 1.4 % of a core.
    private static string? WaitOf(TraceCallStack? stack)
    {
        for (var (frame, depth) = (stack, 0); frame is not null && depth < 3; (frame, depth) = (frame.Caller, depth + 1))
        {
            var name = frame.CodeAddress.FullMethodName;
            if (string.IsNullOrEmpty(name)) continue;
            if (WaitMethods.FirstOrDefault(w => name.StartsWith(w, StringComparison.Ordinal)) is { } wait) return wait.TrimEnd('.');
            // The sockets' event loop as the innermost managed frame is its epoll wait; handling events goes deeper.
            if (depth == 0 && name.StartsWith("System.Net.Sockets.SocketAsyncEngine.EventLoop", StringComparison.Ordinal)) return "socket event loop";
        }
        return null;
    }

    private static readonly string[] WaitMethods =
    [
        "System.Threading.SpinWait.", "System.Threading.Thread.Sleep", "System.Threading.Thread.<PollGC>" /* suspended for a collection */, "System.Threading.Monitor.Wait",
        "System.Threading.SemaphoreSlim.Wait", "System.Threading.WaitHandle.Wait", "System.Threading.LowLevelLifoSemaphore.Wait",
        "System.Threading.LowLevelSpinWaiter.Wait",
    ];

    private static string Frames(TraceCallStack? stack, int count)
    {
        var names = new List<string>(count);
        for (var frame = stack; frame is not null && names.Count < count; frame = frame.Caller)
            if (frame.CodeAddress.FullMethodName is { Length: > 0 } name && !name.StartsWith("System.Runtime.CompilerServices.", StringComparison.Ordinal))
                names.Add(Method(name).Replace("System.Threading.Tasks.", "", StringComparison.Ordinal));
        return string.Join(" < ", names);
    }

    // "Keystone.Graph.GraphOperatorGrain.Process" -> "GraphOperatorGrain"; the operators' shared base and helpers are
    // not stages (the concrete operator further in is).
    private static string? StageGrain(string method)
    {
        var dot = method.LastIndexOf('.');
        if (dot <= 0) return null;
        var type = method[..dot];
        if (type.IndexOf('`') is var tick and > 0) type = type[..tick];
        if (type.IndexOf('+') is var nested and > 0) type = type[..nested];
        var shortName = type[(type.LastIndexOf('.') + 1)..];
        // A grain interface or its proxy is the caller's side of a call, not a stage of its own.
        var isInterface = shortName.StartsWith("Proxy_", StringComparison.Ordinal) || (shortName.Length > 1 && shortName[0] == 'I' && char.IsUpper(shortName[1]));
        return shortName.EndsWith("Grain", StringComparison.Ordinal) && !isInterface && shortName is not ("LoggedOperatorGrain" or "EntityOperatorGrain") ? shortName : null;
    }

    private static string Namespace(string method)
    {
        var end = method.IndexOf('(') is var p and > 0 ? p : method.Length;
        var parts = method[..end].Split('.');
        return parts.Length > 2 ? $"{parts[0]}.{parts[1]}" : parts[0];
    }

    // "Keystone.Graph.GraphOperatorGrain+<OnNextAsync>d__12.MoveNext()" -> "Keystone.Graph.GraphOperatorGrain.OnNextAsync"
    private static string Method(string method)
    {
        var end = method.IndexOf('(') is var p and > 0 ? p : method.Length;
        var name = StateMachine().Replace(method[..end], ".$1");
        return name.EndsWith(".MoveNext", StringComparison.Ordinal) ? name[..^".MoveNext".Length] : name;
    }

    private static string Short(string type) => type.Length > 60 ? type[..60] + "…" : type;

    [GeneratedRegex(@"\+<([^>]+)>[a-z]__\w+(\.MoveNext)?")]
    private static partial Regex StateMachine();
}
