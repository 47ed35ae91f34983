using System.Diagnostics;
using Keystone.LocalInfra;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// The status page test needs a headless Chromium. When none is on PATH, this installs Debian's <c>chromium</c>
/// package (as root, or through password-less sudo), so the README's test command passes by itself on a fresh
/// machine; where it cannot, it says exactly what to install.
/// </summary>
public static class ChromiumInstaller
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task<string> EnsureAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (InfraLocator.FindExecutable("chromium") is { } found) return found;
            var apt = InfraLocator.FindExecutable("apt-get")
                ?? throw new InvalidOperationException("Chromium ('chromium') is not on PATH and there is no apt-get to install it: install Chromium, then run the tests again.");
            var root = Environment.UserName == "root";
            var sudo = root ? null : InfraLocator.FindExecutable("sudo");
            if (!root && sudo is null)
                throw new InvalidOperationException("Chromium ('chromium') is not on PATH; installing it needs root: run 'sudo apt-get install chromium', then the tests again.");
            await Run(root ? apt : sudo!, root ? ["update", "-qq"] : ["-n", apt, "update", "-qq"]);
            await Run(root ? apt : sudo!, root ? ["install", "-y", "-qq", "chromium"] : ["-n", apt, "install", "-y", "-qq", "chromium"]);
            return InfraLocator.FindExecutable("chromium")
                ?? throw new InvalidOperationException("apt-get installed the chromium package, but 'chromium' is still not on PATH.");
        }
        finally
        {
            Gate.Release();
        }
    }

    private static async Task Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"Installing Chromium failed ({file} {string.Join(' ', args)}, exit code {process.ExitCode}); install the 'chromium' package by hand, then run the tests again.\n{await stdout}\n{await stderr}");
    }
}
