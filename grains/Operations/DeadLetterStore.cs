using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Keystone.Storage;

namespace Keystone.Operations;

/// <summary>Dead letters: retention and how many a single request may add. Section <c>Keystone:DeadLetters</c>.</summary>
public sealed class DeadLetterOptions
{
    public const string Section = "Keystone:DeadLetters";

    /// <summary>How long dead letters are kept; older ones are deleted.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Refused events kept per request; the rest are still counted and reported, not kept.</summary>
    [System.ComponentModel.DataAnnotations.Range(0, 100_000)]
    public int MaxPerRequest { get; set; } = 1_000;

    /// <summary>How long ingest waits for the refused events of a request to be kept before it answers without them (a
    /// warning says so): a dead-letter store that hangs must not hold the request's valid events, nor outlast the
    /// 30 s in which Orleans answers a call. Between 100 ms and 25 s.</summary>
    public TimeSpan KeepTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Dead letters in Azure Blob storage, one JSON blob each, named <c>{stage}/{id}</c> with time-ordered ids so that a
/// listing is oldest first and the cursor is the blob service's own continuation token.
/// </summary>
/// <param name="stalled">Fault injection (<c>Keystone:Faults:StallDeadLetterWrites</c>): writes never complete.</param>
public sealed class DeadLetterStore(BlobContainerClient container, bool stalled = false)
{
    private volatile bool _ready;

    public static string NewId(string stage, DateTimeOffset at) =>
        $"{stage}.{at.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff", CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Keeps events whose processing failed at <paramref name="stage"/> on their own (poison events), with the
    /// error; <paramref name="topic"/> is where a replay goes (null: through ingest).</summary>
    public Task ParkAsync(string stage, IReadOnlyList<(Events.KeystoneEvent Event, Exception Error)> poison, int attempts, DateTimeOffset now, string? topic) =>
        AddAsync([.. poison.Select(p => new DeadLetter(NewId(stage, now), stage, p.Event.EventType, p.Event.EventId.ToString(),
            Describe(p.Error), attempts, now, Events.EventJson.Serialize(p.Event), null, topic))]);

    // Type and message, bounded (no stack: it is for operators).
    private static string Describe(Exception e)
    {
        var text = $"{e.GetType().Name}: {e.Message}";
        return text.Length > 2_000 ? text[..2_000] : text;
    }

    /// <summary>The stage an id belongs to, or null when the id is not one of ours (no path tricks reach storage).</summary>
    public static string? StageOf(string id)
    {
        var dot = id.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || id.Length > 100) return null;
        foreach (var c in id)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or 'T')) return null;
        return id[..dot];
    }

    private async Task Ready()
    {
        if (_ready) return;
        await container.CreateIfNotExistsAsync();
        _ready = true;
    }

    public async Task AddAsync(IReadOnlyList<DeadLetter> letters, CancellationToken cancellationToken = default)
    {
        if (letters.Count == 0) return;
        if (stalled) await Task.Delay(Timeout.Infinite, cancellationToken);
        await Ready();
        await Parallel.ForEachAsync(letters, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (letter, ct) =>
            await Write(letter, ct));
    }

    private Task Write(DeadLetter letter, CancellationToken ct) =>
        container.GetBlobClient($"{letter.Stage}/{letter.Id}").UploadAsync(
            BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(letter, KeystoneStateSerializer.Options)),
            new BlobUploadOptions { Metadata = new Dictionary<string, string> { ["type"] = Ascii(letter.EventType) } },
            ct);

    public async Task<DeadLetter?> GetAsync(string id)
    {
        if (StageOf(id) is not { } stage) return null;
        await Ready();
        try
        {
            var content = await container.GetBlobClient($"{stage}/{id}").DownloadContentAsync();
            return JsonSerializer.Deserialize<DeadLetter>(content.Value.Content.ToMemory().Span, KeystoneStateSerializer.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public async Task UpdateAsync(DeadLetter letter)
    {
        await Ready();
        await Write(letter, CancellationToken.None);
    }

    /// <summary>Oldest first; <paramref name="cursor"/> is the previous page's. Filtering by type reads blob metadata only.</summary>
    public async Task<DeadLetterPage> ListAsync(string? stage, string? eventType, int limit, string? cursor)
    {
        await Ready();
        var items = new List<DeadLetter>();
        var prefix = stage is null ? null : stage + "/";
        var next = cursor;
        do
        {
            await foreach (var page in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, CancellationToken.None).AsPages(next, limit))
            {
                foreach (var blob in page.Values)
                {
                    if (eventType is not null && (!blob.Metadata.TryGetValue("type", out var type) || type != Ascii(eventType))) continue;
                    var id = blob.Name[(blob.Name.IndexOf('/', StringComparison.Ordinal) + 1)..];
                    if (await GetAsync(id) is { } letter) items.Add(letter);
                }
                next = page.ContinuationToken;
                break;
            }
        }
        while (items.Count < limit && !string.IsNullOrEmpty(next));
        return new DeadLetterPage(items, string.IsNullOrEmpty(next) ? null : next);
    }

    /// <summary>Deletes dead letters older than <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset cutoff)
    {
        await Ready();
        var stamp = cutoff.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff", CultureInfo.InvariantCulture);
        var deleted = 0;
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, CancellationToken.None))
        {
            var id = blob.Name[(blob.Name.IndexOf('/', StringComparison.Ordinal) + 1)..];
            var dot = id.IndexOf('.', StringComparison.Ordinal);
            if (dot < 0 || id.Length < dot + 1 + stamp.Length) continue;
            if (string.CompareOrdinal(id.Substring(dot + 1, stamp.Length), stamp) >= 0) continue;
            await container.DeleteBlobIfExistsAsync(blob.Name);
            deleted++;
        }
        return deleted;
    }

    // Blob metadata values are ASCII; event types are lower-case dotted words, anything else is kept out.
    private static string Ascii(string? value) => value is null ? "" : new string([.. value.Where(c => c is >= ' ' and <= '~').Take(128)]);
}
