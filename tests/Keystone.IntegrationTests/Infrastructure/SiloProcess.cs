using System.Diagnostics;
using System.Text;
using Keystone.Events;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// The real silo host as a separate OS process (the built Keystone.Silo.dll), so a test can kill it the hard way
/// (SIGKILL, no shutdown hooks) and start it again on the same ports and storage.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private SiloProcess(Process process, int httpPort, string? apiKey)
    {
        _process = process;
        HttpPort = httpPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(30) };
        if (apiKey is not null) Http.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
    }

    public int HttpPort { get; }
    public int ProcessId => _process.Id;
    public HttpClient Http { get; }
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <param name="ownProcessGroup">Start it in a session and process group of its own (<c>setsid</c>), so a test can kill the group.</param>
    public static async Task<SiloProcess> StartAsync(int httpPort, IReadOnlyDictionary<string, string?> settings, TimeSpan? timeout = null, bool ownProcessGroup = false)
    {
        var psi = new ProcessStartInfo(ownProcessGroup ? "/usr/bin/setsid" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(SiloDll())!,
        };
        if (ownProcessGroup) psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(SiloDll());
        psi.ArgumentList.Add("--environment");
        psi.ArgumentList.Add("Testing");
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add($"http://127.0.0.1:{httpPort}");
        foreach (var (k, v) in settings)
        {
            if (k == "Urls" || v is null) continue;
            psi.ArgumentList.Add($"--{k}={v}");
        }

        var process = new Process { StartInfo = psi };
        var silo = new SiloProcess(process, httpPort, settings.GetValueOrDefault("Keystone:Security:Keys:0:Key"));
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"the silo process exited with {process.ExitCode}:\n{silo.Output}");
            try
            {
                var response = await silo.Http.GetAsync("/health/ready");
                if (response.IsSuccessStatusCode) return silo;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(250);
        }
        await silo.DisposeAsync();
        throw new TimeoutException($"the silo process did not become ready:\n{silo.Output}");
    }

    // Output keeps the first lines only, and what tests assert on reads it; the lines past it are kept as a rolling
    // tail for a failure's report, since what went wrong in a long test is rarely in its first minutes.
    private const int HeadChars = 200_000;
    private const int TailChars = 400_000;
    private readonly Queue<string> _tail = new();
    private int _tailChars;
    private long _dropped;

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            if (_output.Length < HeadChars)
            {
                _output.AppendLine(line);
                return;
            }
            _tail.Enqueue(line);
            _tailChars += line.Length + 1;
            while (_tailChars > TailChars)
            {
                _tailChars -= _tail.Dequeue().Length + 1;
                _dropped++;
            }
        }
    }

    /// <summary>The lines after <see cref="Output"/>'s first 200,000 characters: the last 400,000 characters of them,
    /// with how many lines in between were let go. Empty while the output fits in <see cref="Output"/>.</summary>
    public string Tail
    {
        get
        {
            lock (_output)
            {
                if (_tail.Count == 0) return "";
                var skipped = _dropped > 0 ? $"... {_dropped} lines left out ...\n" : "";
                return skipped + string.Join('\n', _tail) + "\n";
            }
        }
    }

    /// <summary>The lines the silo logged at error or critical level (the console logger's <c>fail:</c> and <c>crit:</c>)
    /// after the first line containing <paramref name="after"/>, or in the whole output.</summary>
    public List<string> ErrorLines(string? after = null)
    {
        var output = Output;
        if (after is not null)
        {
            var at = output.IndexOf(after, StringComparison.Ordinal);
            if (at < 0) throw new InvalidOperationException($"the silo's output has no line with '{after}'");
            output = output[at..];
        }
        return [.. output.Split('\n').Where(l => l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal))];
    }

    /// <summary>SIGTERM, as Kubernetes stops a pod: the host shuts down gracefully (the silo leaves the cluster,
    /// grains write their state). Returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited) return _process.ExitCode;
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await term.WaitForExitAsync();
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no graceful shutdown, no last checkpoint, in-flight work lost.</summary>
    public void Kill()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>The silo built alongside these tests, in the same configuration.</summary>
    public static string SiloDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = RepoFiles.PathOf(Path.Combine("silo", "bin", configuration, "net10.0", "Keystone.Silo.dll"));
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"the silo is not built at {dll}");
    }

    /// <summary>
    /// Posts events the way a producer that retries until accepted does; a retry of a request that had gone through
    /// is exactly the kind of duplicate the pipeline must absorb.
    /// </summary>
    public async Task PostWithRetryAsync(KeystoneEvent[] events)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var response = await Http.PostAsync("/v1/events", TestEvents.JsonContent(TestEvents.JsonArray(events)));
                if (response.StatusCode == System.Net.HttpStatusCode.Accepted) return;
            }
            catch (HttpRequestException) when (attempt < 20)
            {
            }
            catch (TaskCanceledException) when (attempt < 20)
            {
            }
            await Task.Delay(500);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        Http.Dispose();
        return ValueTask.CompletedTask;
    }
}
