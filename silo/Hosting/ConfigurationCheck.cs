using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Keystone.Client.Hosting;
using Keystone.Client.Publishing;
using Keystone.Pipeline;
using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Checkpointing;
using Keystone.Graph;
using Keystone.Operations;

namespace Keystone.Silo.Hosting;

/// <summary>A configuration that cannot work. The message lists every problem with its full key.</summary>
public sealed class KeystoneConfigurationException(IReadOnlyList<string> problems)
    : Exception("Invalid Keystone configuration:\n  - " + string.Join("\n  - ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>
/// Checks the whole <c>Keystone</c> configuration before anything starts: values bind and satisfy their
/// constraints, providers have what they need, and no key is misspelt (an unknown key is an error, not a silently
/// ignored setting).
/// </summary>
internal static class ConfigurationCheck
{
    private static readonly Dictionary<string, Type> Sections = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Ingest"] = typeof(IngestOptions),
        ["Routing"] = typeof(RoutingOptions),
        ["Taps"] = typeof(TapOptions),
        ["Schemas"] = typeof(SchemaOptions),
        ["Storage"] = typeof(StorageOptions),
        ["Cluster"] = typeof(ClusterOptions),
        ["Streaming"] = typeof(StreamingOptions),
        ["Local"] = typeof(LocalOptions),
        ["Client"] = typeof(KeystoneClientOptions),
        ["Publisher"] = typeof(PublisherOptions),
        ["Aggregation"] = typeof(AggregationOptions),
        ["Ads"] = typeof(AdsOptions),
        ["Graph"] = typeof(GraphOptions),
        ["Faults"] = typeof(FaultOptions),
        ["Alerts"] = typeof(AlertOptions),
        ["DeadLetters"] = typeof(DeadLetterOptions),
        ["Security"] = typeof(SecurityOptions),
        ["Archive"] = typeof(ArchiveOptions),
        ["Metrics"] = typeof(MetricsOptions),
        ["Checkpoints"] = typeof(CheckpointOptions),
        ["Lake"] = typeof(Keystone.Lake.LakeOptions),
        ["Runtime"] = typeof(RuntimeOptions),
    };

    /// <summary>Sections that later features add; listed so a configuration written for them is not refused here.</summary>
    public static readonly HashSet<string> ExtensionSections = new(StringComparer.OrdinalIgnoreCase);

    public static void Validate(IConfiguration configuration)
    {
        var problems = new List<string>();
        var root = configuration.GetSection("Keystone");

        foreach (var child in root.GetChildren())
        {
            if (child.Key.Equals("Role", StringComparison.OrdinalIgnoreCase) || child.Key.Equals("Dashboard", StringComparison.OrdinalIgnoreCase)) continue;
            if (ExtensionSections.Contains(child.Key)) continue;
            if (!Sections.TryGetValue(child.Key, out var type))
            {
                problems.Add($"Keystone:{child.Key}: unknown section (known: Role, Dashboard, {string.Join(", ", Sections.Keys.Concat(ExtensionSections).Order())})");
                continue;
            }
            CheckKeys(child, type, problems);
        }

        T? BindChecked<T>(string section) where T : class, new()
        {
            try
            {
                var value = SiloSetup.Bind<T>(configuration, section);
                var results = new List<ValidationResult>();
                if (!Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
                    problems.AddRange(results.Select(r => $"{section}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
                ValidateNested(value, section, problems);
                return value;
            }
            catch (InvalidOperationException e)
            {
                problems.Add(e.InnerException is null ? e.Message : $"{e.Message} {e.InnerException.Message}");
                return null;
            }
        }

        var host = new KeystoneHostOptions();
        try
        {
            configuration.GetSection("Keystone").Bind(host);
        }
        catch (InvalidOperationException e)
        {
            problems.Add($"Keystone:Role / Keystone:Dashboard: {e.InnerException?.Message ?? e.Message} (Role is Silo or Gateway; Dashboard is true or false)");
        }

        var ingest = BindChecked<IngestOptions>(IngestOptions.Section);
        var routingOptions = BindChecked<RoutingOptions>(RoutingOptions.Section);
        if (routingOptions is not null && routingOptions.RefreshInterval < TimeSpan.FromMilliseconds(50))
            problems.Add("Keystone:Routing:RefreshInterval must be at least 50 ms.");
        BindChecked<TapOptions>(TapOptions.Section);
        BindChecked<SchemaOptions>(SchemaOptions.Section);
        var storage = BindChecked<StorageOptions>(StorageOptions.Section);
        var cluster = BindChecked<ClusterOptions>(ClusterOptions.Section);
        var streaming = BindChecked<StreamingOptions>(StreamingOptions.Section);
        BindChecked<LocalOptions>(LocalOptions.Section);
        BindChecked<KeystoneClientOptions>(KeystoneClientOptions.Section);
        var aggregation = BindChecked<AggregationOptions>(AggregationOptions.Section);
        if (aggregation is not null) problems.AddRange(aggregation.Problems());
        // Whether an empty key list is acceptable depends on the environment: checked when the host is built.
        var security = BindChecked<SecurityOptions>(SecurityOptions.Section);
        if (security is not null) problems.AddRange(security.Problems(development: true));
        var archive = BindChecked<ArchiveOptions>(ArchiveOptions.Section);
        if (archive is not null && archive.ManifestInterval < TimeSpan.FromMilliseconds(100)) problems.Add("Keystone:Archive:ManifestInterval must be at least 100 ms.");
        if (archive is not null && (archive.SealInterval < TimeSpan.FromMilliseconds(100) || archive.SealInterval > TimeSpan.FromHours(1)))
            problems.Add("Keystone:Archive:SealInterval must be between 100 ms and 1 hour.");
        if (archive is not null && archive.MaxReplayRange <= TimeSpan.Zero) problems.Add("Keystone:Archive:MaxReplayRange must be positive.");
        var lake = BindChecked<Keystone.Lake.LakeOptions>(Keystone.Lake.LakeOptions.Section);
        if (lake is not null) problems.AddRange(lake.Problems());
        var dead = BindChecked<DeadLetterOptions>(DeadLetterOptions.Section);
        if (dead is not null && dead.Retention <= TimeSpan.Zero) problems.Add("Keystone:DeadLetters:Retention must be positive.");
        if (dead is not null && (dead.KeepTimeout < TimeSpan.FromMilliseconds(100) || dead.KeepTimeout > TimeSpan.FromSeconds(25)))
            problems.Add("Keystone:DeadLetters:KeepTimeout must be between 100 ms and 25 s (Orleans answers a call within 30 s).");
        var alerts = BindChecked<AlertOptions>(AlertOptions.Section);
        if (alerts is not null && alerts.EvaluationInterval < TimeSpan.FromMilliseconds(100))
            problems.Add("Keystone:Alerts:EvaluationInterval must be at least 100 ms.");
        var ads = BindChecked<AdsOptions>(AdsOptions.Section);
        if (ads is not null) problems.AddRange(ads.Problems());
        BindChecked<FaultOptions>(FaultOptions.Section);
        var graph = BindChecked<GraphOptions>(GraphOptions.Section);
        if (graph is not null) problems.AddRange(graph.Problems());
        var checkpoints = BindChecked<CheckpointOptions>(CheckpointOptions.Section);
        if (checkpoints is not null) problems.AddRange(checkpoints.Problems());
        var runtime = BindChecked<RuntimeOptions>(RuntimeOptions.Section);
        if (runtime is not null) problems.AddRange(runtime.Problems());

        if (ingest is not null && ingest.MaxEventBytes > ingest.MaxRequestBytes)
            problems.Add("Keystone:Ingest:MaxEventBytes must not exceed Keystone:Ingest:MaxRequestBytes.");
        if (ingest is not null && (ingest.MaxClockSkew < TimeSpan.Zero || ingest.MaxClockSkew > ingest.MaxFutureSkew))
            problems.Add("Keystone:Ingest:MaxClockSkew must be at least 0 and at most Keystone:Ingest:MaxFutureSkew (an event further ahead is refused anyway).");
        if (streaming is not null)
        {
            if (streaming.PollPeriod <= TimeSpan.Zero) problems.Add("Keystone:Streaming:PollPeriod must be positive.");
            if (streaming.AzureQueue.MaxIdlePoll < TimeSpan.Zero || streaming.AzureQueue.MaxIdlePoll > TimeSpan.FromMinutes(1))
                problems.Add($"Keystone:Streaming:AzureQueue:MaxIdlePoll must be between 0 (read every poll period) and 1 minute, got {streaming.AzureQueue.MaxIdlePoll}.");
            if (streaming.LocalGather < TimeSpan.Zero || streaming.LocalGather > TimeSpan.FromSeconds(1))
                problems.Add("Keystone:Streaming:LocalGather must be between 0 and 1 second.");
            if (streaming.MaxEventDeliveryTime <= TimeSpan.Zero) problems.Add("Keystone:Streaming:MaxEventDeliveryTime must be positive.");
            if (streaming.MaxConsumerLag < TimeSpan.FromSeconds(10)) problems.Add("Keystone:Streaming:MaxConsumerLag must be at least 10 s.");
            // A gateway runs no streams: the hub's credentials are a silo's business (the Kubernetes manifests give
            // both roles one ConfigMap and the hub's secret to the silos only).
            if (streaming.Provider == StreamProviderKind.EventHubs && host.Role == HostRole.Silo)
            {
                if (string.IsNullOrWhiteSpace(streaming.EventHubs.ConnectionString))
                    problems.Add("Keystone:Streaming:EventHubs:ConnectionString is required when Keystone:Streaming:Provider is EventHubs.");
                if (string.IsNullOrWhiteSpace(streaming.EventHubs.Hub))
                    problems.Add("Keystone:Streaming:EventHubs:Hub is required when Keystone:Streaming:Provider is EventHubs.");
            }
            if (streaming.Provider == StreamProviderKind.AzureQueue && ingest is not null && ingest.MaxEventBytes > 40 * 1024)
                problems.Add("Keystone:Ingest:MaxEventBytes must be at most 40960 with the AzureQueue provider (a queue message holds 64 KiB base64-encoded).");
        }
        if (checkpoints is { FrontingLog: FrontingLogMode.EventHubs } && host.Role == HostRole.Silo)
        {
            if (string.IsNullOrWhiteSpace(checkpoints.EventHubs.ConnectionString))
                problems.Add("Keystone:Checkpoints:EventHubs:ConnectionString is required when Keystone:Checkpoints:FrontingLog is EventHubs.");
            if (string.IsNullOrWhiteSpace(checkpoints.EventHubs.Hub))
                problems.Add("Keystone:Checkpoints:EventHubs:Hub is required when Keystone:Checkpoints:FrontingLog is EventHubs.");
            if (string.IsNullOrWhiteSpace(checkpoints.EventHubs.ConsumerGroup))
                problems.Add("Keystone:Checkpoints:EventHubs:ConsumerGroup must not be empty.");
            if (ingest is not null && ingest.MaxEventBytes > SiloSetup.MaxEventHubsFrontingBytes)
                problems.Add($"Keystone:Ingest:MaxEventBytes must be at most {SiloSetup.MaxEventHubsFrontingBytes} with the Event Hubs fronting log (a fronting message travels as one Event Hubs event, at most 1 MB).");
        }
        if (cluster is not null && cluster.Kubernetes && cluster.Mode != ClusteringMode.AzureTable)
            problems.Add("Keystone:Cluster:Kubernetes requires Keystone:Cluster:Mode AzureTable (pods come and go with new addresses; membership must live outside them).");
        if (cluster is not null && cluster.SiloPort == cluster.GatewayPort)
            problems.Add("Keystone:Cluster:SiloPort and Keystone:Cluster:GatewayPort must differ.");
        if (storage is not null && string.IsNullOrWhiteSpace(storage.ConnectionString))
            problems.Add("Keystone:Storage:ConnectionString is required.");

        if (problems.Count > 0) throw new KeystoneConfigurationException(problems);
    }

    private static void ValidateNested(object value, string path, List<string> problems)
    {
        foreach (var p in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.PropertyType == typeof(string) || !p.PropertyType.IsClass || typeof(IEnumerable).IsAssignableFrom(p.PropertyType)) continue;
            var nested = p.GetValue(value);
            if (nested is null) continue;
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(nested, new ValidationContext(nested), results, validateAllProperties: true))
                problems.AddRange(results.Select(r => $"{path}:{p.Name}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
        }
    }

    private static void CheckKeys(IConfigurationSection section, Type type, List<string> problems)
    {
        foreach (var child in section.GetChildren())
        {
            var property = type.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null)
            {
                var known = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name);
                problems.Add($"{child.Path}: unknown setting (known in {section.Path}: {string.Join(", ", known)})");
                continue;
            }
            var t = property.PropertyType;
            if (t != typeof(string) && t.IsClass && !typeof(IEnumerable).IsAssignableFrom(t))
                CheckKeys(child, t, problems);
        }
    }
}
