using Keystone.IntegrationTests.Infrastructure;
using Keystone.Routing;
using Keystone.Silo.Hosting;
using Keystone.Silo.Streaming;
using Keystone.Topics;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Streaming.EventHubs;

namespace Keystone.IntegrationTests.Pipeline;

/// <summary>Start-up validation: bad configuration and bad rule files stop the host with a precise message.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class HostConfigurationTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_silo_configured_for_event_hubs_builds_and_passes_orleans_validation()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "EventHubs";
        // A syntactically valid connection string to a namespace that does not exist: nothing connects until start.
        settings["Keystone:Streaming:EventHubs:ConnectionString"] = "Endpoint=sb://keystone-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=bm90LWEta2V5";
        settings["Keystone:Streaming:EventHubs:Hub"] = "keystone-fronting";
        await using var host = await KeystoneHost.BuildAsync(["--environment", "Testing"], c => c.AddInMemoryCollection(settings));

        // The same validators Orleans runs when the silo starts.
        var validators = host.App.Services.GetServices<IConfigurationValidator>().ToArray();
        Assert.NotEmpty(validators);
        foreach (var validator in validators) validator.ValidateConfiguration();

        var adapter = host.App.Services.GetRequiredKeyedService<IEventHubDataAdapter>(StreamNames.Provider);
        Assert.IsType<KeystoneEventHubDataAdapter>(adapter);
        Assert.Contains(validators, v => v is EventHubOptionsValidator);
        Assert.Contains(validators, v => v is StreamCheckpointerConfigurationValidator);
    }

    [Fact]
    public async Task A_silo_reads_its_settings_files_once_and_caches_as_many_grain_addresses_as_configured()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        await using (var host = await KeystoneHost.BuildAsync(["--environment", "Testing"], c => c.AddInMemoryCollection(settings)))
        {
            // Reloading appsettings*.json on change would watch the whole content root, silo/.local included.
            var files = ((IConfigurationRoot)host.App.Configuration).Providers.OfType<Microsoft.Extensions.Configuration.Json.JsonConfigurationProvider>().ToList();
            Assert.NotEmpty(files);
            Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is reloaded on change"));
            Assert.Equal(100_000, host.App.Services.GetRequiredService<IOptions<GrainDirectoryOptions>>().Value.CacheSize);
        }

        settings["Keystone:Cluster:DirectoryCacheSize"] = "250000";
        await using (var host = await KeystoneHost.BuildAsync(["--environment", "Testing", "--hostBuilder:reloadConfigOnChange=true"], c => c.AddInMemoryCollection(settings)))
        {
            Assert.Equal(250_000, host.App.Services.GetRequiredService<IOptions<GrainDirectoryOptions>>().Value.CacheSize);
            // An operator who wants the files reloaded still can.
            Assert.Contains(((IConfigurationRoot)host.App.Configuration).Providers.OfType<Microsoft.Extensions.Configuration.Json.JsonConfigurationProvider>(), f => f.Source.ReloadOnChange);
        }

        settings["Keystone:Cluster:DirectoryCacheSize"] = "10";
        var e = await Assert.ThrowsAsync<KeystoneConfigurationException>(() => KeystoneHost.BuildAsync(["--environment", "Testing"], c => c.AddInMemoryCollection(settings)));
        Assert.Contains("DirectoryCacheSize", e.Message);
    }

    [Fact]
    public async Task A_silo_with_the_event_hubs_fronting_log_keeps_the_log_on_the_hub_in_messages_one_hub_event_holds()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "Local";
        settings["Keystone:Checkpoints:FrontingLog"] = "EventHubs";
        // A namespace that does not exist: nothing connects until the first partition writer opens.
        settings["Keystone:Checkpoints:EventHubs:ConnectionString"] = "Endpoint=sb://keystone-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=bm90LWEta2V5";
        settings["Keystone:Checkpoints:EventHubs:Hub"] = "keystone-fronting";
        await using var host = await KeystoneHost.BuildAsync(["--environment", "Testing"], c => c.AddInMemoryCollection(settings));

        Assert.IsType<Keystone.Checkpointing.EventHubsFrontingLog>(host.App.Services.GetRequiredService<Keystone.Checkpointing.IFrontingLog>());
        Assert.Equal("keystone-fronting", host.App.Services.GetRequiredService<AzureEventHubPartitions>().Hub);
        var checkpoints = host.App.Services.GetRequiredService<IOptions<Keystone.Checkpointing.CheckpointOptions>>().Value;
        Assert.Equal(Keystone.Checkpointing.FrontingLogMode.EventHubs, checkpoints.Resolved);
        Assert.True(checkpoints.Logging);
        Assert.Equal(SiloSetup.MaxEventHubsFrontingBytes, host.App.Services.GetRequiredService<IOptions<Keystone.Pipeline.IngestOptions>>().Value.MaxBytesPerStreamMessage);
    }

    [Fact]
    public async Task Event_hubs_without_a_hub_name_is_refused_before_start()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provider"] = "EventHubs";
        settings["Keystone:Streaming:EventHubs:ConnectionString"] = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b";
        var e = await Assert.ThrowsAsync<KeystoneConfigurationException>(() => KeystoneHost.BuildAsync([], c => c.AddInMemoryCollection(settings)));
        Assert.Contains("Keystone:Streaming:EventHubs:Hub is required when Keystone:Streaming:Provider is EventHubs.", e.Problems);
    }

    [Fact]
    public async Task Misspelt_and_out_of_range_settings_are_refused_with_their_keys()
    {
        var settings = TestSilo.DefaultSettings(azurite);
        settings["Keystone:Streaming:Provder"] = "Memory";
        settings["Keystone:Ingest:Partitions"] = "0";
        var e = await Assert.ThrowsAsync<KeystoneConfigurationException>(() => KeystoneHost.BuildAsync([], c => c.AddInMemoryCollection(settings)));
        Assert.Contains(e.Problems, p => p.StartsWith("Keystone:Streaming:Provder: unknown setting", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.StartsWith("Keystone:Ingest:Partitions:", StringComparison.Ordinal) && p.Contains("between 1 and 1024", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_invalid_rules_file_stops_the_host_with_the_line_and_rule()
    {
        var path = Path.Combine(Path.GetTempPath(), AzuriteFixture.UniqueName("rules") + ".yaml");
        await File.WriteAllTextAsync(path, """
            routing-rules:
              - name: "playback"
                condition: { event-typ: "video.*" }
                destinations:
                  - { topic: "analytics-playback-events" }
            """);
        try
        {
            var settings = TestSilo.DefaultSettings(azurite);
            settings["Keystone:Routing:RulesFile"] = path;
            var e = await Assert.ThrowsAsync<RoutingRulesException>(() => KeystoneHost.BuildAsync([], c => c.AddInMemoryCollection(settings)));
            Assert.Equal(3, e.Line);
            Assert.Equal("playback", e.Rule);
            Assert.Contains("unknown attribute 'event-typ'", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
