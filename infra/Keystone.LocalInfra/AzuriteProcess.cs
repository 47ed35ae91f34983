using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Keystone.LocalInfra;

/// <summary>
/// A real Azurite (Azure Storage emulator) process from the pinned copy in <c>infra/</c>: blob, queue and table
/// services on 127.0.0.1. Ports are chosen by the OS unless given, read back from Azurite's output, and turned into
/// a connection string. The process is killed on dispose. If this process dies first, however it dies (a SIGKILL of
/// its whole process group included), the emulator stops by itself: it watches this process's pid and the end of a
/// pipe on its stdin that only this process holds (<c>run-azurite.mjs</c>, <c>azurite-watchdog.mjs</c>).
/// </summary>
public sealed partial class AzuriteProcess : IAsyncDisposable
{
    /// <summary>The public, well-known development account of the Azure Storage emulators.</summary>
    public const string DevAccountName = "devstoreaccount1";
    public const string DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process _process;
    private readonly StringBuilder _output;

    private AzuriteProcess(Process process, StringBuilder output, int blobPort, int queuePort, int tablePort)
    {
        _process = process;
        _output = output;
        BlobPort = blobPort;
        QueuePort = queuePort;
        TablePort = tablePort;
    }

    public int BlobPort { get; }
    public int QueuePort { get; }
    public int TablePort { get; }
    public int ProcessId => _process.Id;
    public bool HasExited => _process.HasExited;

    public string ConnectionString => BuildConnectionString(BlobPort, QueuePort, TablePort);

    public static string BuildConnectionString(int blobPort, int queuePort, int tablePort) =>
        $"DefaultEndpointsProtocol=http;AccountName={DevAccountName};AccountKey={DevAccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{DevAccountName};" +
        $"QueueEndpoint=http://127.0.0.1:{queuePort}/{DevAccountName};" +
        $"TableEndpoint=http://127.0.0.1:{tablePort}/{DevAccountName};";

    [GeneratedRegex(@"Azurite (Blob|Queue|Table) service is successfully listening at http://[^:]+:(\d+)")]
    private static partial Regex ListeningLine();

    /// <summary>
    /// Starts Azurite. <paramref name="dataDirectory"/> null keeps everything in memory (tests); a directory keeps
    /// data across restarts (local runs). Ports 0 mean "any free port".
    /// </summary>
    public static async Task<AzuriteProcess> StartAsync(
        string? dataDirectory = null,
        int blobPort = 0,
        int queuePort = 0,
        int tablePort = 0,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        var infra = InfraLocator.FindInfraDirectory();
        await NpmInstaller.EnsureInstalledAsync(infra, cancellationToken);

        var node = InfraLocator.FindExecutable("node")
            ?? throw new InvalidOperationException("Node.js ('node') is not on PATH; it is needed to run Azurite from infra/. Install Node 20 or later.");

        var psi = new ProcessStartInfo(node)
        {
            // Never written to: its end, when this process is gone, is the emulator's signal to stop.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = infra,
        };
        psi.ArgumentList.Add(Path.Combine(infra, "run-azurite.mjs"));
        foreach (var arg in new[] { "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry" }) psi.ArgumentList.Add(arg);
        foreach (var (flag, value) in new[] { ("--blobHost", "127.0.0.1"), ("--queueHost", "127.0.0.1"), ("--tableHost", "127.0.0.1") })
        {
            psi.ArgumentList.Add(flag);
            psi.ArgumentList.Add(value);
        }
        psi.ArgumentList.Add("--blobPort");
        psi.ArgumentList.Add(blobPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add("--queuePort");
        psi.ArgumentList.Add(queuePort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add("--tablePort");
        psi.ArgumentList.Add(tablePort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (dataDirectory is null)
        {
            psi.ArgumentList.Add("--inMemoryPersistence");
        }
        else
        {
            Directory.CreateDirectory(dataDirectory);
            psi.ArgumentList.Add("--location");
            psi.ArgumentList.Add(dataDirectory);
        }
        psi.Environment["KEYSTONE_PARENT_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var output = new StringBuilder();
        var ports = new Dictionary<string, int>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output)
            {
                if (output.Length < 64 * 1024) output.AppendLine(line);
                var m = ListeningLine().Match(line);
                if (!m.Success) return;
                ports[m.Groups[1].Value] = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (ports.Count == 3) ready.TrySetResult();
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"Azurite exited with code {process.ExitCode} before it was ready:\n{output}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            await ready.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60), cancellationToken);
        }
        catch (TimeoutException)
        {
            TryKill(process);
            throw new TimeoutException($"Azurite did not report its ports within the timeout. Output:\n{output}");
        }
        catch
        {
            TryKill(process);
            throw;
        }
        return new AzuriteProcess(process, output, ports["Blob"], ports["Queue"], ports["Table"]);
    }

    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <summary>Kills the emulator abruptly (fault tests use it to take storage away).</summary>
    public void Kill() => TryKill(_process);

    private static void TryKill(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        TryKill(_process);
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Finds the repository's <c>infra/</c> folder and tools on PATH.</summary>
public static class InfraLocator
{
    /// <summary>Walks up from the running assembly (and the current directory) to the folder holding <c>infra/package.json</c>.</summary>
    public static string FindInfraDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("KEYSTONE_INFRA_DIR");
        if (!string.IsNullOrEmpty(overridden) && File.Exists(Path.Combine(overridden, "package.json"))) return Path.GetFullPath(overridden);

        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            var dir = new DirectoryInfo(start);
            while (dir is not null)
            {
                var candidate = Path.Combine(dir.FullName, "infra", "package.json");
                if (File.Exists(candidate)) return Path.Combine(dir.FullName, "infra");
                dir = dir.Parent;
            }
        }
        throw new DirectoryNotFoundException("Could not find the repository's infra/ folder (with package.json) above the application or current directory; set KEYSTONE_INFRA_DIR.");
    }

    public static string? FindExecutable(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}

/// <summary>Runs <c>npm ci</c> in <c>infra/</c> once when its node_modules is missing, serialised across processes by a lock file.</summary>
public static class NpmInstaller
{
    public static async Task EnsureInstalledAsync(string infraDirectory, CancellationToken cancellationToken = default)
    {
        var marker = Path.Combine(infraDirectory, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (File.Exists(marker)) return;

        var lockPath = Path.Combine(infraDirectory, ".npm-install.lock");
        FileStream? lockFile = null;
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (lockFile is null)
        {
            try
            {
                lockFile = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500, cancellationToken);
            }
        }
        await using (lockFile)
        {
            if (File.Exists(marker)) return;
            var npm = InfraLocator.FindExecutable("npm")
                ?? throw new InvalidOperationException("npm is not on PATH; it is needed to install Azurite into infra/ (npm ci).");
            var psi = new ProcessStartInfo(npm)
            {
                WorkingDirectory = infraDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "ci", "--no-audit", "--no-fund", "--loglevel=error" }) psi.ArgumentList.Add(a);
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0 || !File.Exists(marker))
                throw new InvalidOperationException($"'npm ci' in {infraDirectory} failed with exit code {process.ExitCode}:\n{await stdout}\n{await stderr}");
        }
    }
}
