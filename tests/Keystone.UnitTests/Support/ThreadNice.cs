namespace Keystone.UnitTests.Support;

internal static class ThreadNice
{
    /// <summary>The calling thread's nice value on Linux (the 19th field of its /proc stat line); elsewhere, where the
    /// background thread gets a lower .NET priority instead, the value it would have.</summary>
    public static int OfCurrentThread(int elsewhere)
    {
        if (!OperatingSystem.IsLinux()) return elsewhere;
        var stat = File.ReadAllText("/proc/thread-self/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[16], System.Globalization.CultureInfo.InvariantCulture);
    }
}
