using System.Diagnostics;
using Keystone.IntegrationTests.Infrastructure;
using Keystone.LocalInfra;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>Runs a Node.js script of the repository, installing its folder's pinned npm packages first when missing.</summary>
internal static class NodeTool
{
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    public static async Task EnsureInstalledAsync(string folder, string marker)
    {
        if (Directory.Exists(Path.Combine(folder, "node_modules", marker))) return;
        await InstallLock.WaitAsync();
        try
        {
            if (Directory.Exists(Path.Combine(folder, "node_modules", marker))) return;
            var (code, output) = await RunAsync(InfraLocator.FindExecutable("npm") ?? throw new InvalidOperationException("npm is not on PATH"), folder, "ci", "--no-audit", "--no-fund", "--loglevel=error");
            Assert.True(code == 0, $"npm ci in {folder} failed ({code}):\n{output}");
        }
        finally
        {
            InstallLock.Release();
        }
    }

    public static Task<(int ExitCode, string Output)> NodeAsync(string workingDirectory, params string[] args) =>
        RunAsync(InfraLocator.FindExecutable("node") ?? throw new InvalidOperationException("node is not on PATH"), workingDirectory, args);

    private static async Task<(int, string)> RunAsync(string file, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    public static string Repo(string relative) => RepoFiles.PathOf(relative);
}
