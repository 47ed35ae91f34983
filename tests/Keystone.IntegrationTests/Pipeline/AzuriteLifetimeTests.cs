using System.Diagnostics;
using System.Globalization;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>
/// Azurite must not outlive whatever started it. CI runners, <c>timeout -s KILL</c> and container runtimes stop a
/// process group with SIGKILL: nothing in the group gets to clean up, and a server in a group of its own is not hit.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzuriteLifetimeTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    [Fact]
    public async Task Killing_the_hosts_whole_process_group_with_sigkill_leaves_no_azurite_of_that_run()
    {
        // Process groups, setsid and /proc are what this is about; other systems have none of them.
        if (!OperatingSystem.IsLinux()) return;

        // The data directory is unique to this run and on the command line of every Azurite process it starts.
        var data = Path.Combine(Path.GetTempPath(), "keystone-azurite-lifetime-" + Guid.NewGuid().ToString("N"));
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Local:StartAzurite"] = "true";
        settings["Keystone:Local:AzuriteData"] = data;
        var silo = await SiloProcess.StartAsync(TestSilo.FreePort(), settings, ownProcessGroup: true);
        try
        {
            var before = ProcessesMentioning(data);
            output.WriteLine(string.Join("\n", before.Select(p => $"{p.Pid}: {p.CommandLine}")));
            Assert.Contains(before, p => p.CommandLine.Contains("azurite.js", StringComparison.Ordinal));

            var group = ProcessGroupOf(silo.ProcessId);
            Assert.Equal(silo.ProcessId, group);
            // Never the group this test runs in.
            Assert.NotEqual(ProcessGroupOf(Environment.ProcessId), group);
            using (var kill = Process.Start("kill", ["-KILL", "--", $"-{group}"])!)
                await kill.WaitForExitAsync();

            var deadline = DateTime.UtcNow.AddSeconds(15);
            var left = ProcessesMentioning(data);
            while (left.Count > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
                left = ProcessesMentioning(data);
            }
            foreach (var (pid, _) in left) TryKill(pid);
            Assert.True(left.Count == 0, "still running 15 s after the group was killed:\n" + string.Join("\n", left.Select(p => $"{p.Pid}: {p.CommandLine}")));
        }
        finally
        {
            await silo.DisposeAsync();
            foreach (var (pid, _) in ProcessesMentioning(data)) TryKill(pid);
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    private static List<(int Pid, string CommandLine)> ProcessesMentioning(string text)
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                var commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(text, StringComparison.Ordinal)) found.Add((pid, commandLine));
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return found;
    }

    // Field 5 of /proc/<pid>/stat, after the command name (which may itself hold spaces and parentheses).
    private static int ProcessGroupOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[2], CultureInfo.InvariantCulture);
    }

    private static void TryKill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
        }
        catch (InvalidOperationException)
        {
        }
    }
}
