using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Keystone.Events;
using Keystone.LocalInfra;

namespace Keystone.Bench;

/// <summary>
/// Kill -9 under load, then restart (issue 11's recovery target): the silo runs as a process of its own in the shipped
/// configuration (fronting log in local files, default checkpoint intervals), a producer posts plays over REST at a
/// steady rate, the silo is killed with SIGKILL mid-run and started again on the same ports, storage and log
/// directory, and the producer carries on, re-sending (same event ids) every request that got no 202. Measured: how
/// long until the new process accepts again and until an event published after the restart is counted, and whether
/// every user's count ends exact, nothing lost and nothing counted twice.
/// </summary>
public static class RecoveryBenchmark
{
    private const int EventsPerRequest = 250;

    public static async Task<int> RunAsync(int rate, int secondsBefore, int secondsAfter, int users)
    {
        Console.WriteLine("Starting Azurite (in memory)...");
        await using var azurite = await AzuriteProcess.StartAsync();
        var httpPort = FreePort();
        var clusterId = "recovery-" + Guid.NewGuid().ToString("N")[..8];
        var key = "bench_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var logDirectory = Path.Combine(Path.GetTempPath(), "keystone-bench", clusterId);
        var settings = new Dictionary<string, string>
        {
            ["Keystone:Dashboard"] = "false",
            ["Keystone:Storage:ConnectionString"] = azurite.ConnectionString,
            ["Keystone:Storage:Container"] = clusterId,
            ["Keystone:Cluster:SiloPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:GatewayPort"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Keystone:Cluster:ClusterId"] = clusterId,
            ["Keystone:Checkpoints:LogDirectory"] = logDirectory,
            ["Keystone:Local:StartAzurite"] = "false",
            ["Keystone:Local:Simulate"] = "false",
            ["Keystone:Security:Keys:0:Name"] = "bench",
            ["Keystone:Security:Keys:0:Key"] = key,
            ["Keystone:Security:Keys:0:Scopes:0"] = "admin",
            ["Keystone:Security:RequestsPerMinute"] = "0",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        // KEYSTONE_BENCH_VERBOSE=1: the silos log Keystone's information lines too (replays, seals), for a run to be read.
        if (Environment.GetEnvironmentVariable("KEYSTONE_BENCH_VERBOSE") == "1") settings["Logging:LogLevel:Keystone"] = "Information";
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Add("X-Api-Key", key);

        var silo = await StartSilo(httpPort, settings, http);
        var expected = new long[users];
        var sent = 0L;
        var start = DateTimeOffset.UtcNow;
        // Events numbered from a steady clock: request i is due at i × (requests per second)⁻¹.
        var perSecond = rate / (double)EventsPerRequest;
        var clock = Stopwatch.StartNew();
        var probeUser = $"{clusterId}-probe";
        TimeSpan? killedAt = null, acceptingAt = null, readyAt = null;
        long resentRequests = 0, accepted = 0;
        // Several requests in flight, as a producer that waits for each 202 must have to keep up.
        using var inFlight = new SemaphoreSlim(8);
        var requests = new List<Task>();
        var restarting = Task.CompletedTask;
        Task<TimeSpan?> probing = Task.FromResult<TimeSpan?>(null);
        var total = (int)((secondsBefore + secondsAfter) * perSecond);
        for (var i = 0; i < total; i++)
        {
            var due = TimeSpan.FromSeconds(i / perSecond);
            if (due > clock.Elapsed) await Task.Delay(due - clock.Elapsed);
            if (killedAt is null && clock.Elapsed >= TimeSpan.FromSeconds(secondsBefore))
            {
                Console.WriteLine($"  {clock.Elapsed.TotalSeconds:0.0} s: kill -9 after {Interlocked.Read(ref accepted):N0} events accepted");
                silo.Kill();
                killedAt = clock.Elapsed;
                restarting = Task.Run(async () =>
                {
                    silo = await StartSilo(httpPort, settings, http);
                    readyAt = clock.Elapsed;
                });
                probing = FirstCount(http, probeUser, clock, TimeSpan.FromMinutes(5));
            }

            var batch = new List<KeystoneEvent>(EventsPerRequest + 1);
            for (var j = 0; j < EventsPerRequest; j++)
            {
                var n = sent + j;
                // Five titles per user, a few dozen viewers per title: a graph that stays the size of a real one.
                var user = n % users;
                batch.Add(Play($"{clusterId}-u{user}", $"v{(user * 13 + n / users % 5) % 997}", start.AddMilliseconds(n / (rate / 1000.0))));
            }
            // After the restart, one event per request for a user nobody wrote to before: its first count is the
            // moment an event published after the restart went all the way through. Stamped on the same clock as the
            // request's other events: stamped with the wall clock, while the producer caught up on the seconds the
            // restart took, it moved its partition's watermark that far ahead, and the window operator rightly sent
            // the other users' events of that partition to late-events (the one-partition shortfalls of stop 38 and
            // of this stop's first runs).
            if (killedAt is not null) batch.Add(Play(probeUser, "v0", start.AddMilliseconds((sent + EventsPerRequest - 1) / (rate / 1000.0))));
            var body = Encoding.UTF8.GetBytes("[" + string.Join(",", batch.Select(EventJson.Serialize)) + "]");
            var first = sent;
            sent += EventsPerRequest;
            await inFlight.WaitAsync();
            requests.Add(Task.Run(async () =>
            {
                try
                {
                    for (var attempt = 0; ; attempt++)
                    {
                        if (await Post(http, body)) break;
                        if (attempt == 0) Interlocked.Increment(ref resentRequests);
                        await Task.Delay(100);
                    }
                    lock (expected)
                    {
                        if (killedAt is not null && acceptingAt is null && readyAt is not null) acceptingAt = clock.Elapsed;
                        for (var j = 0; j < EventsPerRequest; j++) expected[(first + j) % users]++;
                    }
                    Interlocked.Add(ref accepted, EventsPerRequest);
                }
                finally
                {
                    inFlight.Release();
                }
            }));
        }
        await Task.WhenAll(requests);
        await restarting;
        var producerDone = clock.Elapsed;
        Console.WriteLine($"  {producerDone.TotalSeconds:0.0} s: producer done, {sent:N0} events accepted ({rate:N0}/s offered)");

        // When the probe's first event was counted: polled every 100 ms from the kill on.
        var processingAt = await probing;

        // Every user's count, until all are exact (or five minutes pass): a count above the truth is a double count
        // and stays one.
        TimeSpan? exactAt = null;
        long counted = 0, over = 0, under = 0;
        var deadline = clock.Elapsed + TimeSpan.FromMinutes(5);
        while (clock.Elapsed < deadline)
        {
            (counted, over, under) = await Check(http, clusterId, expected);
            if (under == 0 || over > 0) { exactAt = over == 0 ? clock.Elapsed : null; break; }
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        if (exactAt is null) await Explain(http, clusterId, expected, logDirectory);
        var tooLate = await TooLate(http);
        silo.Kill();
        if (exactAt is not null && Directory.Exists(logDirectory)) Directory.Delete(logDirectory, recursive: true);

        Console.WriteLine();
        Console.WriteLine($"recovery at {rate:N0} events/s offered, kill -9 after {secondsBefore} s, {users:N0} users, shipped configuration (fronting log in files):");
        Console.WriteLine($"  restarted process ready (health) {Since(readyAt)} after the kill; accepting again {Since(acceptingAt)}; {resentRequests} requests re-sent");
        Console.WriteLine($"  first event published after the restart counted {Since(processingAt)} after the kill");
        Console.WriteLine($"  counts: {counted:N0} of {sent:N0} counted, {over} users above and {under} below their truth; {(exactAt is { } e ? $"all exact {(e - killedAt!.Value).TotalSeconds:0.0} s after the kill" : "NOT exact")}; {tooLate:N0} events too late for their window (to late-events)");
        var met = processingAt is { } p && p - killedAt!.Value <= TimeSpan.FromSeconds(30) && exactAt is not null;
        Console.WriteLine($"recovery target (processing again within 30 s of the kill, counts exact): {(met ? "met" : "NOT met")}");
        Console.WriteLine($"the silo processes' logs: {Path.Combine(Path.GetTempPath(), "keystone-bench-recovery-silo.log")}");
        return 0;

        string Since(TimeSpan? t) => t is { } v ? $"{(v - killedAt!.Value).TotalSeconds:0.0} s" : "never";
    }

    // Counts that did not end exact: which partitions their users are in, and what the silo says about its routers and
    // checkpoints, next to the fronting log (kept) and the silos' log.
    private static async Task Explain(HttpClient http, string prefix, long[] expected, string logDirectory)
    {
        var report = new StringBuilder();
        // One router per partition: the silo says how many it runs.
        var partitions = JsonNode.Parse(await http.GetStringAsync("/v1/stats"))!["routers"]!.AsArray().Count;
        var missing = new long[partitions];
        var users = new int[partitions];
        for (var u = 0; u < expected.Length; u++)
        {
            var n = Math.Max(0, await Count(http, $"{prefix}-u{u}"));
            if (n >= expected[u]) continue;
            var p = Partitioning.PartitionOf($"{prefix}-u{u}", partitions);
            missing[p] += expected[u] - n;
            users[p]++;
            if (users[p] <= 3) report.AppendLine($"user {prefix}-u{u} (partition {p}): {n} of {expected[u]}");
        }
        for (var p = 0; p < partitions; p++) report.AppendLine($"partition {p}: {users[p]} users below, {missing[p]} events missing");
        foreach (var path in new[] { "/v1/stats", "/v1/checkpoints", "/v1/aggregation/operators" })
        {
            try
            {
                report.AppendLine($"GET {path}:").AppendLine(await http.GetStringAsync(path));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                report.AppendLine($"GET {path}: {e.Message}");
            }
        }
        report.AppendLine($"fronting log kept in {logDirectory}");
        var file = Path.Combine(Path.GetTempPath(), "keystone-bench-recovery-failure.txt");
        await File.WriteAllTextAsync(file, report.ToString());
        Console.WriteLine($"  not exact: {string.Join(", ", Enumerable.Range(0, partitions).Where(p => users[p] > 0).Select(p => $"partition {p} {missing[p]:N0} events ({users[p]} users)"))}; details in {file}");
    }

    // Events the window operators found later than their window allows: counted on late-events, not in the users' totals.
    private static async Task<long> TooLate(HttpClient http)
    {
        try
        {
            return JsonNode.Parse(await http.GetStringAsync("/v1/aggregation/operators"))!["partitions"]!.AsArray().Sum(p => p!["too_late"]!.GetValue<long>());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return -1;
        }
    }

    private static KeystoneEvent Play(string user, string video, DateTimeOffset at) =>
        new(Guid.NewGuid(), "video.play.started", at, "1.0", new EventSource("playback-service", "smart_tv", "us-east-1"),
            Payload.Create(("user_id", user), ("profile_id", user + "-p1"), ("video_id", video), ("position_ms", 0L), ("quality", "HD"), ("device_id", user + "-tv")),
            EventMetadata.Of(("trace_id", "recovery")));

    private static async Task<bool> Post(HttpClient http, byte[] body)
    {
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await http.PostAsync("/v1/events", content);
            return response.StatusCode == HttpStatusCode.Accepted;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private static async Task<TimeSpan?> FirstCount(HttpClient http, string user, Stopwatch clock, TimeSpan timeout)
    {
        var deadline = clock.Elapsed + timeout;
        while (clock.Elapsed < deadline)
        {
            if (await Count(http, user) > 0) return clock.Elapsed;
            await Task.Delay(100);
        }
        return null;
    }

    private static async Task<(long Counted, long Over, long Under)> Check(HttpClient http, string prefix, long[] expected)
    {
        long counted = 0, over = 0, under = 0;
        for (var u = 0; u < expected.Length; u++)
        {
            var n = Math.Max(0, await Count(http, $"{prefix}-u{u}"));
            counted += n;
            if (n > expected[u]) over++;
            else if (n < expected[u]) under++;
        }
        return (counted, over, under);
    }

    private static async Task<long> Count(HttpClient http, string user)
    {
        try
        {
            using var response = await http.GetAsync($"/v1/users/{user}/activity");
            return response.IsSuccessStatusCode ? JsonNode.Parse(await response.Content.ReadAsStringAsync())!["totals"]!["events"]!.GetValue<long>() : 0;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return -1;
        }
    }

    private sealed class SiloChild(Process process)
    {
        public void Kill()
        {
            if (process.HasExited) return;
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
    }

    private static async Task<SiloChild> StartSilo(int httpPort, Dictionary<string, string> settings, HttpClient http)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var dll = SiloDll();
        psi.WorkingDirectory = Path.GetDirectoryName(dll)!;
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--environment");
        psi.ArgumentList.Add("Production");
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add($"http://127.0.0.1:{httpPort}");
        foreach (var (k, v) in settings) psi.ArgumentList.Add($"--{k}={v}");
        // As `dotnet run` (launchSettings.json) and the container image start it.
        psi.Environment["DOTNET_GCgen0size"] = "0x4000000";
        var process = Process.Start(psi)!;
        // Drained, or a full pipe would stall the silo; warnings and errors are shown.
        process.OutputDataReceived += (_, e) => Show(e.Data);
        process.ErrorDataReceived += (_, e) => Show(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (process.HasExited) throw new InvalidOperationException($"the silo exited with {process.ExitCode}");
            try
            {
                using var response = await http.GetAsync("/health/ready");
                if (response.IsSuccessStatusCode) return new SiloChild(process);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("the silo did not become ready within 2 minutes");
    }

    private static void Show(string? line)
    {
        // A console log entry is its level and category on one line and its message on the next.
        if (line is null) return;
        lock (SiloLog) SiloLog.WriteLine(line);
        var level = line.StartsWith("warn:", StringComparison.Ordinal) || line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal);
        if (level || Interlocked.Exchange(ref _showNext, 0) == 1) Console.WriteLine("    silo: " + line.Trim());
        if (level) _showNext = 1;
    }

    private static int _showNext;

    // Everything both silo processes wrote, for reading after the run.
    private static readonly StreamWriter SiloLog = new(Path.Combine(Path.GetTempPath(), "keystone-bench-recovery-silo.log")) { AutoFlush = true };

    private static string SiloDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Orleans.Keystone.sln"))) continue;
            var dll = Path.Combine(dir.FullName, "silo", "bin", configuration, "net10.0", "Keystone.Silo.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"the silo is not built at {dll} (build it with -c {configuration})");
        }
        throw new DirectoryNotFoundException("Orleans.Keystone.sln not found above " + AppContext.BaseDirectory);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
