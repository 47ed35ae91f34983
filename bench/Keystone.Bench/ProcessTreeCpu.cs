using System.Diagnostics;

namespace Keystone.Bench;

/// <summary>
/// CPU time of a process and every process below it, read from <c>/proc</c>: the emulator runs as a child of its
/// launcher, and its share of the machine is what the silo's storage work costs beyond the silo's own CPU. Null where
/// there is no <c>/proc</c>.
/// </summary>
public static class ProcessTreeCpu
{
    public static TimeSpan? Of(int root)
    {
        if (!Directory.Exists("/proc")) return null;
        var tree = Keystone.LocalInfra.ProcessTree.Of(root);
        var total = TimeSpan.Zero;
        foreach (var pid in tree)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                total += process.TotalProcessorTime;
            }
            catch (ArgumentException) { /* gone meanwhile */ }
            catch (InvalidOperationException) { }
        }
        return total;
    }
}
