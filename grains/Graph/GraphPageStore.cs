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

/// <summary>
/// Sealed reverse-adjacency pages: one blob each, <c>{type}/{id}/{LABEL}/{page}.json</c> (the id as a
/// <see cref="StorageNames.Segment"/>), written once when the page fills and never rewritten, so a node with a
/// million in-edges checkpoints one open page, not a million entries.
/// Pages are immutable, so reads are cached (bounded).
/// </summary>
public sealed class GraphPageStore(BlobContainerClient container)
{
    private const int CachedPages = 512;
    private readonly ConcurrentDictionary<string, InEntry[]> _cache = new(StringComparer.Ordinal);
    private volatile bool _ready;

    public static string BlobName(NodeType type, string id, EdgeLabel label, int page) =>
        $"{GraphSchema.Name(type)}/{StorageNames.Segment(id)}/{GraphSchema.Name(label)}/{page:D8}.json";

    public async Task WriteAsync(NodeType type, string id, EdgeLabel label, int page, InEntry[] entries)
    {
        if (!_ready)
        {
            await container.CreateIfNotExistsAsync();
            _ready = true;
        }
        var name = BlobName(type, id, label, page);
        // Overwrite: after a crash the same page is sealed again from the replayed state.
        await container.GetBlobClient(name).UploadAsync(new BinaryData(JsonSerializer.SerializeToUtf8Bytes(entries, KeystoneStateSerializer.Options)), overwrite: true);
        _cache.TryRemove(name, out _);
    }

    public async Task<InEntry[]> ReadAsync(NodeType type, string id, EdgeLabel label, int page)
    {
        var name = BlobName(type, id, label, page);
        if (_cache.TryGetValue(name, out var cached)) return cached;
        try
        {
            var content = await container.GetBlobClient(name).DownloadContentAsync();
            var entries = JsonSerializer.Deserialize<InEntry[]>(content.Value.Content.ToMemory().Span, KeystoneStateSerializer.Options) ?? [];
            if (_cache.Count >= CachedPages) _cache.Clear();
            _cache[name] = entries;
            return entries;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new InvalidOperationException($"graph page {name} is missing from storage", e);
        }
    }
}
