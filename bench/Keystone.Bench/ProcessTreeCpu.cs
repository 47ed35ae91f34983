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
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // The command may hold spaces and parentheses: the fields start after the last ')'.
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        var tree = new HashSet<int> { root };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (pid, parent) in parents)
                if (tree.Contains(parent) && tree.Add(pid)) grew = true;
        }
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
