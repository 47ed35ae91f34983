using System.Text.Json.Nodes;
using Keystone.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>What the multi-silo tests share: their silos' ports, reading a silo's REST API (-1 or null while the silo
/// does not answer), and their report at the end.</summary>
internal static class ClusterTestKit
{
    public static string Port() => TestSilo.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Keystone's own warnings and errors in a silo's console log, the newest <paramref name="max"/> of them: the lines
    /// that say what the pipeline did about a failure (replays, lost activations, failed checkpoints). A log's tail is
    /// mostly Orleans retrying a dead silo.
    /// </summary>
    public static string KeystoneWarnings(string log, int max = 40)
    {
        var entries = new List<string>();
        System.Text.StringBuilder? entry = null;
        foreach (var line in log.Split('\n'))
        {
            if (line.StartsWith("warn: ", StringComparison.Ordinal) || line.StartsWith("fail: ", StringComparison.Ordinal) || line.StartsWith("crit: ", StringComparison.Ordinal))
            {
                if (entry is not null) entries.Add(entry.ToString());
                entry = line[6..].StartsWith("Keystone", StringComparison.Ordinal) ? new System.Text.StringBuilder(line) : null;
            }
            else if (entry is not null && line.StartsWith(' '))
            {
                entry.Append('\n').Append(line);
            }
            else if (entry is not null)
            {
                entries.Add(entry.ToString());
                entry = null;
            }
        }
        if (entry is not null) entries.Add(entry.ToString());
        return entries.Count == 0 ? "(no Keystone warning)" : string.Join('\n', entries.TakeLast(max));
    }

    /// <summary>Writes each silo's Keystone warnings and log tail and stops it; then the failure, last, so that a log cut
    /// to its tail (as CI's is) still shows why the test failed.</summary>
    public static async Task StopAndReport(IEnumerable<SiloProcess> silos, Exception? failure, ITestOutputHelper output)
    {
        foreach (var silo in silos)
        {
            // Its first lines and, past them, its last ones (SiloProcess keeps both).
            var log = silo.Output + silo.Tail;
            output.WriteLine($"--- silo :{silo.HttpPort}, Keystone warnings\n" + KeystoneWarnings(log));
            output.WriteLine($"--- silo :{silo.HttpPort}\n" + (log.Length > 3000 ? log[^3000..] : log));
            if (failure is not null)
            {
                // The log as kept, for what happened before its last lines: a failure on a loaded machine is rarely in them.
                var file = Path.Combine(Path.GetTempPath(), $"keystone-silo-{silo.HttpPort}-{DateTime.UtcNow:HHmmss}.log");
                await File.WriteAllTextAsync(file, log);
                output.WriteLine($"--- silo :{silo.HttpPort}, its log (first and last lines): {file}");
            }
            await silo.DisposeAsync();
        }
        if (failure is not null) output.WriteLine($"=== failed: {failure.GetType().Name}: {failure.Message}");
    }

    public static List<string> Active(JsonNode cluster) =>
        [.. cluster["members"]!.AsArray().Where(m => m!["status"]!.GetValue<string>() == "Active").Select(m => m!["address"]!.GetValue<string>())];

    public static List<string> RouterSilos(JsonNode cluster) =>
        [.. cluster["partitions"]!.AsArray().Select(p => p!["router"]?.GetValue<string>() ?? "(none)")];

    public static async Task<JsonNode?> Cluster(SiloProcess silo)
    {
        try
        {
            var response = await silo.Http.GetAsync("/v1/cluster");
            return response.IsSuccessStatusCode ? JsonNode.Parse(await response.Content.ReadAsStringAsync()) : null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    public static async Task<string> Text(SiloProcess silo, string path)
    {
        try
        {
            return await silo.Http.GetStringAsync(path);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return $"({path} did not answer: {e.Message})";
        }
    }

    public static Task<long> ActivityEvents(SiloProcess silo, string user) => Read(silo, $"/v1/users/{user}/activity", j => j["totals"]!["events"]!.GetValue<long>());

    public static Task<long> Watches(SiloProcess silo, string user) =>
        Read(silo, $"/v1/graph/users/{user}/edges?label=WATCHES&limit=100", j => j["edges"]!.AsArray().Sum(e => e!["count"]!.GetValue<long>()));

    public static Task<long> Impressions(SiloProcess silo, string campaign) => Read(silo, $"/v1/ads/campaigns/{campaign}", j => j["totals"]!["impressions"]!.GetValue<long>());

    /// <summary>Why the last read that gave -1 did (when, what, the answer or exception): a wait that times out on -1
    /// otherwise cannot tell a silo that does not answer from one that answers with an error.</summary>
    public static string? LastReadFailure { get; private set; }

    public static async Task<long> Read(SiloProcess silo, string path, Func<JsonNode, long> pick)
    {
        var started = DateTime.UtcNow;
        try
        {
            var response = await silo.Http.GetAsync(path);
            if (response.IsSuccessStatusCode) return pick(JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
            var body = await response.Content.ReadAsStringAsync();
            LastReadFailure = $"{started:HH:mm:ss.fff} GET {path}: {(int)response.StatusCode} after {(DateTime.UtcNow - started).TotalSeconds:0.0} s: {(body.Length > 400 ? body[..400] : body)}";
            return -1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            LastReadFailure = $"{started:HH:mm:ss.fff} GET {path}: {e.GetType().Name} after {(DateTime.UtcNow - started).TotalSeconds:0.0} s: {e.Message}";
            return -1;
        }
    }
}
