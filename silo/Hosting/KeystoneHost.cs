using static Microsoft.Extensions.Diagnostics.Metrics.MetricsBuilderExtensions;
using MeterScope = Microsoft.Extensions.Diagnostics.Metrics.MeterScope;
using OpenTelemetry.Metrics;
using System.Text.Json;
using Keystone.Client.Hosting;
using Keystone.Events;
using Keystone.LocalInfra;
using Keystone.Pipeline;
using Keystone.Routing;
using Keystone.Schemas;
using Keystone.Silo.Gateway;
using Keystone.Silo.Local;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Dashboard;
using Scalar.AspNetCore;
using Keystone.Ads;
using Keystone.Aggregation;
using Keystone.Archive;
using Keystone.Client.Publishing;
using Keystone.Graph;
using Keystone.Operations;
using Keystone.Storage;

namespace Keystone.Silo.Hosting;

/// <summary>
/// Composes the Keystone process: a silo (or, in the Gateway role, an Orleans client) with the REST gateway, the
/// Orleans dashboard, OpenAPI and health endpoints. Program.cs and the tests build hosts the same way.
/// </summary>
public static class KeystoneHost
{
    public static readonly JsonSerializerOptions ApiJson = CreateApiJson();

    private static JsonSerializerOptions CreateApiJson()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        o.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        return o;
    }

    /// <summary>A built (not yet started) host and the Azurite it started, if any.</summary>
    public sealed class Instance(WebApplication app, AzuriteProcess? azurite) : IAsyncDisposable
    {
        public WebApplication App { get; } = app;
        public AzuriteProcess? Azurite { get; } = azurite;

        /// <summary>The HTTP address Kestrel bound (after start), e.g. http://127.0.0.1:8080.</summary>
        public string BaseAddress =>
            App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("The host has not started.");

        public async ValueTask DisposeAsync()
        {
            try
            {
                await App.StopAsync(TimeSpan.FromSeconds(30)).WaitAsync(TimeSpan.FromSeconds(40));
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or ObjectDisposedException)
            {
            }
            await App.DisposeAsync();
            if (Azurite is not null) await Azurite.DisposeAsync();
        }
    }

    /// <param name="services">Added after the Keystone services: how tests register what production never runs (fault injection).</param>
    public static async Task<Instance> BuildAsync(string[] args, Action<IConfigurationBuilder>? configure = null, Action<IServiceCollection>? services = null)
    {
        // appsettings*.json are read once. Reloading them on change would have .NET watch the whole content root, and
        // with it silo/.local, where the fronting log and the local storage emulator write all the time: every write
        // woke a watcher thread (about 5 % of the quick start silo's CPU). Nothing here reads options again after the
        // start; routing rules and schemas change live through their own grains. A later argument can turn it back on.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false", .. args],
            ContentRootPath = FindContentRoot(),
        });
        configure?.Invoke(builder.Configuration);
        ConfigurationCheck.Validate(builder.Configuration);
        var security = SiloSetup.Bind<SecurityOptions>(builder.Configuration, SecurityOptions.Section);
        if (security.Problems(builder.Environment.IsDevelopment()).ToList() is { Count: > 0 } securityProblems)
            throw new KeystoneConfigurationException(securityProblems);

        var local = SiloSetup.Bind<LocalOptions>(builder.Configuration, LocalOptions.Section);
        AzuriteProcess? azurite = null;
        if (local.StartAzurite)
        {
            var dataDir = string.IsNullOrWhiteSpace(local.AzuriteData) ? null : Path.GetFullPath(local.AzuriteData);
            azurite = await AzuriteProcess.StartAsync(dataDir);
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Keystone:Storage:ConnectionString"] = azurite.ConnectionString });
        }

        try
        {
            Configure(builder);
            services?.Invoke(builder.Services);
            var app = builder.Build();
            app.Services.GetService<StorageRequests>()?.Export(app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            app.Services.GetService<SnapshotStore>()?.Export(app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            app.Services.GetService<Keystone.Archive.SealedLogLake>()?.Export(app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
            Map(app);
            return new Instance(app, azurite);
        }
        catch
        {
            if (azurite is not null) await azurite.DisposeAsync();
            throw;
        }
    }

    private static string FindContentRoot()
    {
        // routing-rules.yaml sits beside the project and is copied next to the binaries; prefer the working directory.
        var cwd = Directory.GetCurrentDirectory();
        return File.Exists(Path.Combine(cwd, "routing-rules.yaml")) ? cwd : AppContext.BaseDirectory;
    }

    public static void Configure(WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var services = builder.Services;
        var host = new KeystoneHostOptions();
        configuration.GetSection(KeystoneHostOptions.Section).Bind(host);

        services.AddOptions<IngestOptions>().Bind(configuration.GetSection(IngestOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<RoutingOptions>().Bind(configuration.GetSection(RoutingOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<TapOptions>().Bind(configuration.GetSection(TapOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SchemaOptions>().Bind(configuration.GetSection(SchemaOptions.Section));
        services.AddOptions<StorageOptions>().Bind(configuration.GetSection(StorageOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LocalOptions>().Bind(configuration.GetSection(LocalOptions.Section));
        services.TryAddSingleton(TimeProvider.System);

        // Schemas and rules are loaded now, so a bad file stops the process before it listens, with the file's own error.
        var contentRoot = builder.Environment.ContentRootPath;
        var schemaOptions = SiloSetup.Bind<SchemaOptions>(configuration, SchemaOptions.Section);
        var registry = SchemaRegistry.Load(string.IsNullOrWhiteSpace(schemaOptions.Directory) ? null : Path.Combine(contentRoot, schemaOptions.Directory));
        services.AddSingleton(new SchemaRegistryProvider(registry));
        var routing = SiloSetup.Bind<RoutingOptions>(configuration, RoutingOptions.Section);
        services.AddSingleton(new RoutingRulesProvider(LoadRules(contentRoot, routing, registry)));
        services.AddOptions<MetricsOptions>().Bind(configuration.GetSection(MetricsOptions.Section));
        services.AddSingleton<PipelineMetrics>();
        services.AddOptions<AggregationOptions>().Bind(configuration.GetSection(AggregationOptions.Section));
        services.AddSingleton<CheckpointMetrics>();
        services.AddOptions<AdsOptions>().Bind(configuration.GetSection(AdsOptions.Section));
        services.AddOptions<FaultOptions>().Bind(configuration.GetSection(FaultOptions.Section));
        services.AddOptions<GraphOptions>().Bind(configuration.GetSection(GraphOptions.Section));
        // Access control: a local (Development) run without configured keys gets fresh ones, printed at start, so a
        // newcomer is never locked out and no key is ever committed.
        var security = SiloSetup.Bind<SecurityOptions>(configuration, SecurityOptions.Section);
        var generated = new DevelopmentKeys([]);
        if (security.RequireKeys && security.Keys.Count == 0 && builder.Environment.IsDevelopment())
        {
            generated = new DevelopmentKeys([
                new ApiKey { Name = "dev-ingest", Key = "ks_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)), Scopes = [SecurityOptions.Ingest] },
                new ApiKey { Name = "dev-admin", Key = "ks_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)), Scopes = [SecurityOptions.Admin] },
            ]);
            security.Keys.AddRange(generated.Keys);
        }
        services.AddSingleton(security);
        services.AddSingleton(generated);
        services.AddSingleton<ApiKeyPolicy>();
        services.AddKeystoneAccessControl();
        services.AddKeystoneRateLimiting(security);
        services.AddOptions<ArchiveOptions>().Bind(configuration.GetSection(ArchiveOptions.Section));
        services.AddOptions<DeadLetterOptions>().Bind(configuration.GetSection(DeadLetterOptions.Section));
        services.AddOptions<AlertOptions>().Bind(configuration.GetSection(AlertOptions.Section));
        services.AddOptions<Keystone.Lake.LakeOptions>().Bind(configuration.GetSection(Keystone.Lake.LakeOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AlertMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<AlertMonitor>());
        // Prometheus scrapes /metrics: the pipeline's, the checkpoints' and storage's meters, created by this host's
        // IMeterFactory and selected by scope (Local), not by name alone. OpenTelemetry's AddMeter listens to every
        // meter of that name in the process and merges same-named instruments into one series, so with several hosts
        // in one process (the integration tests) one host stopping ended the others' series.
        services.AddMetrics(m => m
            .EnableMetrics(PipelineMetrics.MeterName, scopes: MeterScope.Local)
            .EnableMetrics(CheckpointMetrics.MeterName, scopes: MeterScope.Local)
            .EnableMetrics(StorageRequests.MeterName, scopes: MeterScope.Local)
            .EnableMetrics(Keystone.Checkpointing.EventHubsFrontingLog.MeterName, scopes: MeterScope.Local)
            // Process-wide meters: the SDK's (co-hosted producers) and .NET's runtime meter (GC collections and pause
            // time, heap, CPU, thread pool: the dashboard's GC row).
            .EnableMetrics(PublisherMetrics.MeterName, scopes: MeterScope.Global)
            .EnableMetrics("System.Runtime", scopes: MeterScope.Global));
        services.AddOpenTelemetry().WithMetrics(m => m.AddPrometheusExporter());

        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        });
        // An unhandled error answers 500 with no detail (an operator reads the log). Where that log is out of reach (the
        // integration tests' console, a developer's terminal scrolled away), the answer names the exception, so a
        // failure that happens once still says why.
        var explainErrors = builder.Environment.IsDevelopment() || builder.Environment.IsEnvironment("Testing");
        services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
        {
            if (explainErrors && c.HttpContext.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Error is { } error)
                c.ProblemDetails.Extensions["exception"] = $"{error.GetType().FullName}: {error.Message}";
        });
        services.AddExceptionHandler<Keystone.Silo.Gateway.ClusterUnavailableHandler>();
        services.AddOpenApi("v1", o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "Orleans.Keystone REST gateway";
            doc.Info.Description = "Publish events, inspect topics, schemas and routing.";
            return Task.CompletedTask;
        }));
        services.AddHealthChecks()
            .AddCheck<ClusterHealthCheck>("cluster", tags: ["ready"])
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"]);

        if (host.Role == HostRole.Silo)
        {
            services.AddOptions<RuntimeOptions>().Bind(configuration.GetSection(RuntimeOptions.Section));
            services.AddSingleton<IThreadPoolMinimum, ProcessThreadPool>();
            // Before Orleans: hosted services start in the order they were added.
            services.AddHostedService<StartupThreadFloor>();
            // Also before Orleans: the silo's start waits on storage (the coordinator's state), and a stall there is
            // what it should name.
            services.AddHostedService<StorageStallWatch>();
            builder.UseOrleans(silo => SiloSetup.ConfigureSilo(silo, configuration, host.Dashboard));
            services.AddHostedService<LiveConfigRefresher>();
            var local = SiloSetup.Bind<LocalOptions>(configuration, LocalOptions.Section);
            if (local.Simulate) services.AddHostedService<LocalSimulator>();
        }
        else
        {
            var client = SiloSetup.Bind<KeystoneClientOptions>(configuration, KeystoneClientOptions.Section);
            builder.UseOrleansClient(c =>
            {
                c.UseKeystoneCluster(client);
                if (host.Dashboard) c.AddDashboard();
            });
        }
    }

    internal static RoutingEngine LoadRules(string contentRoot, RoutingOptions routing, SchemaRegistry registry)
    {
        var path = Path.IsPathRooted(routing.RulesFile) ? routing.RulesFile : Path.Combine(contentRoot, routing.RulesFile);
        if (!File.Exists(path))
            throw new RoutingRulesException($"Routing rules file '{path}' does not exist (Keystone:Routing:RulesFile).");
        var settings = new TransformSettings(routing.Pii.Fields, routing.Pii.Mode, routing.Pii.Salt, registry);
        return new RoutingEngine(RuleSetParser.Parse(File.ReadAllText(path), Path.GetFileName(path), settings));
    }

    public static void Map(WebApplication app)
    {
        var routing = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<RoutingOptions>>().Value;
        if (routing.Pii.Mode == MaskMode.Hash && string.IsNullOrEmpty(routing.Pii.Salt))
            app.Logger.LogWarning("Keystone:Routing:Pii:Salt is not set: mask-pii-fields hashes without a key, so masked values can be matched against guesses. Set a salt outside development.");
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<StorageOptions>>().Value.GrainState == GrainStateStore.Memory)
            app.Logger.LogWarning("Keystone:Storage:GrainState is Memory: grain state is not durable and dies with this silo (a benchmark setting).");

        var archive = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ArchiveOptions>>().Value;
        foreach (var unfed in OperatorInputs.Unfed(app.Services.GetRequiredService<RoutingRulesProvider>().Current.Rules, OperatorInputs.All(archive.Enabled)))
            app.Logger.LogWarning("Routing rules file ({File}): {Problem}", routing.RulesFile, unfed);

        var host = new KeystoneHostOptions();
        app.Configuration.GetSection(KeystoneHostOptions.Section).Bind(host);

        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        // After authorization, so that refused requests (401, 403) do not count against a key's limit.
        app.UseRateLimiter();
        if (!app.Services.GetRequiredService<SecurityOptions>().RequireKeys)
            app.Logger.LogWarning("Keystone:Security:RequireKeys is false: anyone who reaches this port can publish events and change rules, schemas and campaigns");
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/scalar", o => o.WithTitle("Orleans.Keystone API"));

        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = HealthResponses.Write });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = HealthResponses.Write });

        app.MapEvents();
        app.MapTopics();
        app.MapCatalog();
        app.MapActivity();
        app.MapAds();
        app.MapGraph();
        app.MapLiveRules();
        app.MapAlerts();
        app.MapStatusPage();
        app.MapDeadLetters();
        app.MapExports();
        app.MapArchive();
        app.MapAnalytics();
        app.MapPrometheusScrapingEndpoint("/metrics");
        if (host.Dashboard) app.MapOrleansDashboard(routePrefix: "/dashboard").RequireAuthorization(ScopePolicies.Admin);
        app.MapGet("/", () => Results.Redirect("/scalar")).ExcludeFromDescription();
    }
}

/// <summary>Keys made up for a local run (empty otherwise), for the start-up banner.</summary>
public sealed record DevelopmentKeys(IReadOnlyList<ApiKey> Keys);
