using System.Diagnostics;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>Runs the <c>keystone</c> CLI as a separate process against a test silo's gateway.</summary>
public static class KeystoneCli
{
    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(TestSilo silo, params string[] args)
    {
        // The CLI's own build output (its deps file and runtime config), built with the same configuration as the tests.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var cli = RepoFiles.PathOf(Path.Combine("client", "Keystone.Cli", "bin", configuration, "net10.0", "keystone.dll"));
        Assert.True(File.Exists(cli), $"{cli} is missing");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(cli);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var a in new[] { "--gateway", $"127.0.0.1:{silo.GatewayPort}", "--cluster-id", silo.Settings["Keystone:Cluster:ClusterId"]! }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
