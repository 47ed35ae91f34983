using System.Collections.Concurrent;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Keystone.Aggregation;
using Keystone.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Keystone.Graph;

/// <summary>What every graph node grain needs besides its own state.</summary>
public sealed class GraphServices(IOptions<GraphOptions> options, GraphPageStore pages, CheckpointMetrics metrics, TimeProvider time, ILoggerFactory logs, IServiceProvider services)
{
    /// <summary>See <see cref="Keystone.Storage.SnapshotStore.PreparesAtSerialization"/>.</summary>
    public bool PreparedAtSerialization { get; } = Keystone.Storage.SnapshotStore.PreparesAtSerialization(services);

    public GraphOptions Options => options.Value;
    public GraphPageStore Pages => pages;
    public CheckpointMetrics Metrics => metrics;
    public TimeProvider Time => time;
    public ILoggerFactory Logs => logs;
}
