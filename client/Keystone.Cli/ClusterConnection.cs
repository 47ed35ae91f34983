using System.Net.Sockets;
using Keystone.Client.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Keystone.Cli;

/// <summary>
/// An Orleans client host for one command: built, connected and stopped here so that every command fails the same
/// way when the cluster is away — one line on stderr and exit code 3.
/// </summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly IHost _host;

    private ClusterConnection(IHost host, ClusterSettings settings)
    {
        _host = host;
        Settings = settings;
        Client = host.Services.GetRequiredService<IClusterClient>();
        Loggers = host.Services.GetRequiredService<ILoggerFactory>();
    }

    public IClusterClient Client { get; }
    public ILoggerFactory Loggers { get; }
    public ClusterSettings Settings { get; }

    public static async Task<ClusterConnection> ConnectAsync(ClusterSettings settings, CancellationToken cancellationToken)
    {
        var options = settings.ToClientOptions();
        if (!settings.UsesAzureTable) ResolveGateways(options, settings);

        var gate = new LogGate(settings.Verbose);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            // No appsettings.json or environment-driven configuration: the CLI takes its settings from its own options.
            DisableDefaults = true,
            ApplicationName = "keystone",
            ContentRootPath = AppContext.BaseDirectory,
        });
        // The default console lifetime would stop the client on Ctrl+C while a command is still flushing through it.
        builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        builder.Logging.ClearProviders();
        if (settings.Verbose)
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        }
        else
        {
            builder.Logging.AddConsole(o => o.FormatterName = CompactLogFormatter.FormatterName);
            builder.Logging.AddConsoleFormatter<CompactLogFormatter, ConsoleFormatterOptions>();
        }
        // stdout carries data (tail's NDJSON, progress lines); every log line goes to stderr.
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        // A filter rule replaces the minimum level, so the gate applies the level itself.
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddFilter(gate.Allows);
        builder.UseOrleansClient(client => client.UseKeystoneCluster(options, settings.ConnectTimeout));

        var host = builder.Build();
        try
        {
            // The client's own retry filter gives up at the connect timeout; the extra margin only guards against a hang.
            await host.StartAsync(cancellationToken).WaitAsync(settings.ConnectTimeout + TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await StopQuietly(host);
            throw;
        }
        catch (Exception e)
        {
            await StopQuietly(host);
            throw Unreachable(settings, ExceptionText.Reason(e), e);
        }
        gate.Connected();
        return new ClusterConnection(host, settings);
    }

    public static CliException Unreachable(ClusterSettings settings, string reason, Exception? inner = null) =>
        new(ExitCodes.Unreachable,
            $"cannot reach the cluster at {settings.Describe()} ({reason}). Is the silo running? Start it with: dotnet run -c Release --project silo",
            inner);

    public async ValueTask DisposeAsync() => await StopQuietly(_host);

    private static void ResolveGateways(KeystoneClientOptions options, ClusterSettings settings)
    {
        try
        {
            options.ParseGateways();
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message);
        }
        catch (SocketException e)
        {
            throw Unreachable(settings, $"the gateway host does not resolve: {e.Message}", e);
        }
    }

    private static async Task StopQuietly(IHost host)
    {
        try
        {
            await host.StopAsync(CancellationToken.None).WaitAsync(StopTimeout);
        }
        catch (Exception)
        {
            // Leaving anyway: a client that cannot say goodbye to a silo that is gone is not worth reporting.
        }
        try
        {
            if (host is IAsyncDisposable asyncDisposable) await asyncDisposable.DisposeAsync().AsTask().WaitAsync(StopTimeout);
            else host.Dispose();
        }
        catch (Exception)
        {
        }
    }

    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>
    /// Without --verbose: the CLI's and SDK's warnings, but only errors from Orleans and the host, whose warnings
    /// repeat the same lost connection several times a second (the CLI reports its effect: retries, dead letters).
    /// While connecting nothing at all: the outcome is reported as one line.
    /// </summary>
    internal sealed class LogGate(bool verbose)
    {
        private volatile bool _connected;

        public void Connected() => _connected = true;

        public bool Allows(string? provider, string? category, LogLevel level)
        {
            if (verbose) return level >= LogLevel.Debug;
            if (!_connected) return false;
            var framework = category is not null && (category.StartsWith("Orleans", StringComparison.Ordinal) || category.StartsWith("Microsoft", StringComparison.Ordinal));
            return level >= (framework ? LogLevel.Error : LogLevel.Warning);
        }
    }
}
