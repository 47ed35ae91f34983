using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Keystone.Storage;

/// <summary>
/// Reads a blob (or a range of it) into one array of exactly its length. <c>DownloadContentAsync</c> copies the
/// response into a <see cref="MemoryStream"/> that doubles as it fills, and <c>ToArray</c> copies it once more: about
/// three times the blob's bytes, in large-object arrays for a snapshot segment, and a compaction reads every segment
/// of its bucket.
/// </summary>
public static class BlobBytes
{
    public static async Task<byte[]> DownloadAsync(BlobClient blob, HttpRange range = default, CancellationToken cancellationToken = default)
    {
        var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = range }, cancellationToken);
        using var result = response.Value;
        var bytes = new byte[checked((int)result.Details.ContentLength)];
        await result.Content.ReadExactlyAsync(bytes, cancellationToken);
        return bytes;
    }
}
