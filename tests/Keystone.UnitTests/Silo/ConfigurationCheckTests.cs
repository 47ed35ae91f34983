using Keystone.Silo.Hosting;
using Microsoft.Extensions.Configuration;

namespace Keystone.UnitTests.Silo;

public class ConfigurationCheckTests
{
    // What silo/appsettings.json ships.
    private static readonly Dictionary<string, string?> Shipped = new()
    {
        ["Keystone:Role"] = "Silo",
        ["Keystone:Dashboard"] = "true",
        ["Keystone:Ingest:Partitions"] = "8",
        ["Keystone:Ingest:MaxEventBytes"] = "32768",
        ["Keystone:Ingest:MaxRequestBytes"] = "16777216",
        ["Keystone:Routing:RulesFile"] = "routing-rules.yaml",
        ["Keystone:Storage:ConnectionString"] = "UseDevelopmentStorage=true",
        ["Keystone:Storage:Container"] = "keystone-state",
        ["Keystone:Cluster:Mode"] = "Localhost",
        ["Keystone:Cluster:SiloPort"] = "11111",
        ["Keystone:Cluster:GatewayPort"] = "30000",
        ["Keystone:Streaming:Provider"] = "Memory",
    };

    private static IConfiguration Config(params (string Key, string? Value)[] changes)
    {
        var values = new Dictionary<string, string?>(Shipped);
        foreach (var (k, v) in changes) values[k] = v;
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }

    private static KeystoneConfigurationException Fails(params (string Key, string? Value)[] changes) =>
        Assert.Throws<KeystoneConfigurationException>(() => ConfigurationCheck.Validate(Config(changes)));

    [Fact]
    public void The_shipped_configuration_passes()
    {
        ConfigurationCheck.Validate(Config());
        ConfigurationCheck.Validate(new ConfigurationBuilder().Build());
    }

    [Fact]
    public void The_shipped_appsettings_files_pass()
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Support.RepoFiles.PathOf("silo/appsettings.json"))
            .AddJsonFile(Support.RepoFiles.PathOf("silo/appsettings.Development.json"))
            .Build();
        ConfigurationCheck.Validate(configuration);
    }

    [Theory]
    [InlineData("00:02:00")]
    [InlineData("-00:00:01")]
    public void An_idle_poll_wait_out_of_range_is_refused(string wait)
    {
        var e = Fails(("Keystone:Streaming:AzureQueue:MaxIdlePoll", wait));

        Assert.Equal($"Keystone:Streaming:AzureQueue:MaxIdlePoll must be between 0 (read every poll period) and 1 minute, got {TimeSpan.Parse(wait, System.Globalization.CultureInfo.InvariantCulture)}.", Assert.Single(e.Problems));
    }

    [Fact]
    public void A_misspelt_key_is_named_in_full()
    {
        var e = Fails(("Keystone:Streaming:Provder", "EventHubs"));

        var problem = Assert.Single(e.Problems);
        Assert.StartsWith("Keystone:Streaming:Provder: unknown setting (known in Keystone:Streaming: Provider, PollPeriod, ", problem);
        Assert.Contains("Keystone:Streaming:Provder", e.Message);
        Assert.StartsWith("Invalid Keystone configuration:\n  - Keystone:Streaming:Provder", e.Message);
    }

    [Fact]
    public void A_misspelt_nested_key_is_found()
    {
        var e = Fails(("Keystone:Streaming:EventHubs:ConectionString", "Endpoint=sb://x"));
        Assert.StartsWith("Keystone:Streaming:EventHubs:ConectionString: unknown setting (known in Keystone:Streaming:EventHubs: ConnectionString, ", Assert.Single(e.Problems));
    }

    [Fact]
    public void A_bad_enum_value_names_the_key()
    {
        var e = Fails(("Keystone:Streaming:Provider", "Kafka"));
        Assert.Equal(
            "Failed to convert configuration value 'Kafka' at 'Keystone:Streaming:Provider' to type 'Keystone.Silo.Hosting.StreamProviderKind'. Kafka is not a valid value for StreamProviderKind.",
            Assert.Single(e.Problems));
    }

    [Fact]
    public void Event_hubs_without_a_connection_string_names_the_missing_keys()
    {
        var e = Fails(("Keystone:Streaming:Provider", "EventHubs"));
        Assert.Equal(
            [
                "Keystone:Streaming:EventHubs:ConnectionString is required when Keystone:Streaming:Provider is EventHubs.",
                "Keystone:Streaming:EventHubs:Hub is required when Keystone:Streaming:Provider is EventHubs.",
            ],
            e.Problems);
    }

    [Fact]
    public void The_event_hubs_fronting_log_names_what_it_is_missing()
    {
        var e = Fails(("Keystone:Checkpoints:FrontingLog", "EventHubs"), ("Keystone:Ingest:MaxEventBytes", "1048576"), ("Keystone:Checkpoints:EventHubs:ConsumerGroup", " "));
        Assert.Equal(
            [
                "Keystone:Checkpoints:EventHubs:ConnectionString is required when Keystone:Checkpoints:FrontingLog is EventHubs.",
                "Keystone:Checkpoints:EventHubs:Hub is required when Keystone:Checkpoints:FrontingLog is EventHubs.",
                "Keystone:Checkpoints:EventHubs:ConsumerGroup must not be empty.",
                "Keystone:Ingest:MaxEventBytes must be at most 524288 with the Event Hubs fronting log (a fronting message travels as one Event Hubs event, at most 1 MB).",
            ],
            e.Problems);
        Assert.StartsWith("Keystone:Checkpoints:EventHubs:Hbu: unknown setting (known in Keystone:Checkpoints:EventHubs: ConnectionString, ",
            Assert.Single(Fails(("Keystone:Checkpoints:EventHubs:Hbu", "keystone")).Problems));
    }

    [Fact]
    public void The_event_hubs_fronting_log_with_its_settings_passes_and_a_gateway_needs_none_of_them()
    {
        ConfigurationCheck.Validate(Config(
            ("Keystone:Streaming:Provider", "Local"),
            ("Keystone:Checkpoints:FrontingLog", "EventHubs"),
            ("Keystone:Checkpoints:EventHubs:ConnectionString", "Endpoint=sb://example/;SharedAccessKeyName=k;SharedAccessKey=v"),
            ("Keystone:Checkpoints:EventHubs:Hub", "keystone-fronting")));
        ConfigurationCheck.Validate(Config(("Keystone:Role", "Gateway"), ("Keystone:Checkpoints:FrontingLog", "EventHubs")));
    }

    [Fact]
    public void Event_hubs_with_its_settings_passes()
    {
        ConfigurationCheck.Validate(Config(
            ("Keystone:Streaming:Provider", "EventHubs"),
            ("Keystone:Streaming:EventHubs:ConnectionString", "Endpoint=sb://example/;SharedAccessKeyName=k;SharedAccessKey=v"),
            ("Keystone:Streaming:EventHubs:Hub", "keystone")));
    }

    [Fact]
    public void Local_stream_bounds_are_checked_at_start()
    {
        var e = Fails(("Keystone:Streaming:Provider", "Local"), ("Keystone:Streaming:LocalQueueCapacity", "0"), ("Keystone:Streaming:LocalCacheSize", "10"),
            ("Keystone:Streaming:LocalGather", "-00:00:00.001"));
        Assert.Equal(
            ["Keystone:Streaming:LocalCacheSize: The field LocalCacheSize must be between 64 and 1000000.",
             "Keystone:Streaming:LocalGather must be between 0 and 1 second.",
             "Keystone:Streaming:LocalQueueCapacity: The field LocalQueueCapacity must be between 16 and 1000000."],
            e.Problems.Order());
    }

    [Fact]
    public void The_lake_querys_threads_are_checked_at_start()
    {
        Assert.Equal(["Keystone:Lake:QueryThreads: The field QueryThreads must be between 1 and 256."], Fails(("Keystone:Lake:QueryThreads", "0")).Problems);
        ConfigurationCheck.Validate(Config(("Keystone:Lake:QueryThreads", "2")));
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("00:10:00")]
    public void A_storage_try_timeout_out_of_range_is_refused(string timeout)
    {
        var e = Fails(("Keystone:Storage:RequestTryTimeout", timeout));
        Assert.Equal(["Keystone:Storage:RequestTryTimeout: The field RequestTryTimeout must be between 00:00:01 and 00:05:00."], e.Problems);
        ConfigurationCheck.Validate(Config(("Keystone:Storage:RequestTryTimeout", "00:00:05")));
    }

    [Fact]
    public void Storage_retries_out_of_range_are_refused()
    {
        var e = Fails(("Keystone:Storage:RequestRetries", "11"));
        Assert.Equal(["Keystone:Storage:RequestRetries: The field RequestRetries must be between 0 and 10."], e.Problems);
        ConfigurationCheck.Validate(Config(("Keystone:Storage:RequestRetries", "0")));
    }

    [Fact]
    public void The_clients_membership_table_timeout_and_retries_are_checked_at_start()
    {
        Assert.Equal(["Keystone:Client:StorageRequestTryTimeout: The field StorageRequestTryTimeout must be between 00:00:01 and 00:05:00."],
            Fails(("Keystone:Client:StorageRequestTryTimeout", "00:00:00.500")).Problems);
        Assert.Equal(["Keystone:Client:StorageRequestRetries: The field StorageRequestRetries must be between 0 and 10."],
            Fails(("Keystone:Client:StorageRequestRetries", "-1")).Problems);
        ConfigurationCheck.Validate(Config(("Keystone:Client:StorageRequestTryTimeout", "00:00:10"), ("Keystone:Client:StorageRequestRetries", "0")));
    }

    [Fact]
    public void The_memory_kept_for_idle_entities_is_checked_at_start()
    {
        var e = Fails(("Keystone:Storage:SnapshotWarmMegabytes", "-1"));
        Assert.Equal(["Keystone:Storage:SnapshotWarmMegabytes: The field SnapshotWarmMegabytes must be between 0 and 1000000."], e.Problems);
        ConfigurationCheck.Validate(Config(("Keystone:Storage:SnapshotWarmMegabytes", "0")));
    }

    [Fact]
    public void The_start_up_thread_floor_is_checked_at_start()
    {
        var e = Fails(("Keystone:Runtime:StartupMinThreads", "-4"), ("Keystone:Runtime:StartupPeriod", "-00:00:05"));
        Assert.Equal(
            ["Keystone:Runtime:StartupMinThreads must be between 0 and 1024 (got -4).",
             "Keystone:Runtime:StartupPeriod must not be negative (got -00:00:05)."],
            e.Problems.Order());
        Assert.StartsWith("Keystone:Runtime:StartupMinThreds: unknown setting (known in Keystone:Runtime: StartupMinThreads, StartupPeriod",
            Assert.Single(Fails(("Keystone:Runtime:StartupMinThreds", "8")).Problems));
    }

    [Fact]
    public void Zero_partitions_is_out_of_range()
    {
        var e = Fails(("Keystone:Ingest:Partitions", "0"));
        Assert.Equal("Keystone:Ingest:Partitions: The field Partitions must be between 1 and 1024.", Assert.Single(e.Problems));
    }

    [Fact]
    public void An_unknown_section_is_refused()
    {
        var e = Fails(("Keystone:Foo:Bar", "1"));
        Assert.StartsWith("Keystone:Foo: unknown section (known: Role, Dashboard, ", Assert.Single(e.Problems));
    }

    [Fact]
    public void Every_problem_is_listed_at_once()
    {
        var e = Fails(("Keystone:Ingest:Partitions", "0"), ("Keystone:Foo", "x"), ("Keystone:Cluster:GatewayPort", "11111"), ("Keystone:Storage:ConnectionString", " "));
        Assert.Equal(
            [
                "Keystone:Foo: unknown section (known: Role, Dashboard, Ads, Aggregation, Alerts, Archive, Checkpoints, Client, Cluster, DeadLetters, Faults, Graph, Ingest, Lake, Local, Metrics, Publisher, Routing, Runtime, Schemas, Security, Storage, Streaming, Taps)",
                "Keystone:Ingest:Partitions: The field Partitions must be between 1 and 1024.",
                "Keystone:Storage:ConnectionString: The ConnectionString field is required.",
                "Keystone:Cluster:SiloPort and Keystone:Cluster:GatewayPort must differ.",
                "Keystone:Storage:ConnectionString is required.",
            ],
            e.Problems);
    }

    [Fact]
    public void Kubernetes_hosting_needs_table_membership()
    {
        var e = Fails(("Keystone:Cluster:Kubernetes", "true"));
        Assert.StartsWith("Keystone:Cluster:Kubernetes requires Keystone:Cluster:Mode AzureTable", Assert.Single(e.Problems));
        ConfigurationCheck.Validate(Config(("Keystone:Cluster:Kubernetes", "true"), ("Keystone:Cluster:Mode", "AzureTable")));
    }

    [Fact]
    public void Cross_setting_limits_are_checked()
    {
        var e = Fails(("Keystone:Ingest:MaxEventBytes", "65536"), ("Keystone:Ingest:MaxRequestBytes", "32768"));
        Assert.Equal("Keystone:Ingest:MaxEventBytes must not exceed Keystone:Ingest:MaxRequestBytes.", Assert.Single(e.Problems));

        var queue = Fails(("Keystone:Streaming:Provider", "AzureQueue"), ("Keystone:Ingest:MaxEventBytes", "50000"));
        Assert.StartsWith("Keystone:Ingest:MaxEventBytes must be at most 40960 with the AzureQueue provider", Assert.Single(queue.Problems));

        var skew = Fails(("Keystone:Ingest:MaxClockSkew", "00:10:00"), ("Keystone:Ingest:MaxFutureSkew", "00:05:00"));
        Assert.StartsWith("Keystone:Ingest:MaxClockSkew must be at least 0 and at most Keystone:Ingest:MaxFutureSkew", Assert.Single(skew.Problems));
        var negative = Fails(("Keystone:Ingest:MaxClockSkew", "-00:00:01"));
        Assert.StartsWith("Keystone:Ingest:MaxClockSkew must be at least 0", Assert.Single(negative.Problems));
    }

    [Fact]
    public void A_bad_role_is_explained()
    {
        var e = Fails(("Keystone:Role", "Worker"));
        Assert.StartsWith("Keystone:Role / Keystone:Dashboard: ", Assert.Single(e.Problems));
        Assert.EndsWith("(Role is Silo or Gateway; Dashboard is true or false)", e.Problems[0]);
    }

    [Fact]
    public void Nested_option_objects_are_validated()
    {
        var e = Fails(("Keystone:Streaming:EventHubs:CheckpointTable", "bad-table!"));
        Assert.StartsWith("Keystone:Streaming:EventHubs:CheckpointTable: ", Assert.Single(e.Problems));
    }

    [Fact]
    public void Publisher_section_keys_are_checked_too()
    {
        var e = Fails(("Keystone:Publisher:MaxBatchEvent", "10"));
        Assert.StartsWith("Keystone:Publisher:MaxBatchEvent: unknown setting (known in Keystone:Publisher: QueueCapacity, MaxBatchEvents, ", Assert.Single(e.Problems));
    }

    [Fact]
    public void Ads_settings_are_checked_including_the_nested_fraud_rules()
    {
        ConfigurationCheck.Validate(Config(("Keystone:Ads:Fraud:MaxClicksPerMinute", "10"), ("Keystone:Ads:CheckpointInterval", "00:00:10")));
        var e = Fails(("Keystone:Ads:Fraud:MaxClicksPerMinute", "0"), ("Keystone:Ads:Fraud:MinClickDelay", "-00:00:01"),
            ("Keystone:Ads:BillingTopic", "bad topic!"), ("Keystone:Ads:Fraud:MinClikDelay", "1"));
        Assert.Contains(e.Problems, p => p.Contains("Keystone:Ads:Fraud:MaxClicksPerMinute", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains("MinClickDelay must not be negative", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains("BillingTopic: 'bad topic!'", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.StartsWith("Keystone:Ads:Fraud:MinClikDelay: unknown setting", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("00:30:00", null)]
    [InlineData("01:00:00", "01:30:00")]
    public void Export_retention_must_outlast_what_a_restarted_operator_reads_back(string retention, string? horizon)
    {
        ConfigurationCheck.Validate(Config(("Keystone:Ads:ExportRetention", "30.00:00:00")));
        var e = Fails(("Keystone:Ads:ExportRetention", retention), ("Keystone:Ads:DedupeHorizon", horizon ?? "00:02:00"));
        Assert.Equal("Keystone:Ads:ExportRetention must be at least 1 hour and longer than Keystone:Ads:DedupeHorizon (a restarted operator reads that much of its exports back).", Assert.Single(e.Problems));
    }
}
