namespace Keystone.LocalInfra;

/// <summary>
/// A process and every process below it, read from <c>/proc</c>: the storage emulator runs as a child of its launcher,
/// so what is measured of it (its CPU) or done to it (stopping it) must reach the whole tree. Empty where there is no
/// <c>/proc</c>.
/// </summary>
public static class ProcessTree
{
    public static IReadOnlySet<int> Of(int root)
    {
        if (!Directory.Exists("/proc")) return new HashSet<int>();
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
        return tree;
    }
}
