using Azure;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace Keystone.Storage;

/// <summary>
/// Appends a block to an append blob once, even when the storage client sends the append again because its answer was
/// lost (after <c>Keystone:Storage:RequestTryTimeout</c>): unconditionally the block would then be in the blob twice.
/// Each append is conditional on where the blob ends; a second try is refused, and the refusal is recognised as the
/// first try's success when the blob ends with exactly this block there.
/// </summary>
public static class AppendOnce
{
    /// <summary>Appends <paramref name="block"/> at <paramref name="at"/> (the blob's length); returns the new length.</summary>
    public static async Task<long> AppendAsync(AppendBlobClient blob, long at, ReadOnlyMemory<byte> block, CancellationToken cancellationToken = default)
    {
        if (!System.Runtime.InteropServices.MemoryMarshal.TryGetArray(block, out var array)) array = block.ToArray();
        using var stream = new MemoryStream(array.Array!, array.Offset, array.Count, writable: false);
        var options = new AppendBlobAppendBlockOptions { Conditions = new AppendBlobRequestConditions { IfAppendPositionEqual = at } };
        try
        {
            await blob.AppendBlockAsync(stream, options, cancellationToken);
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.AppendPositionConditionNotMet)
        {
            if (!await LandedAsync(blob, at, block, cancellationToken)) throw;
        }
        return at + block.Length;
    }

    /// <summary>The length of a blob just created, or found there (a create whose answer was lost, sent again).</summary>
    public static async Task<long> CreateAsync(AppendBlobClient blob, CancellationToken cancellationToken = default) =>
        await blob.CreateIfNotExistsAsync(cancellationToken: cancellationToken) is null
            ? (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.ContentLength
            : 0;

    private static async Task<bool> LandedAsync(AppendBlobClient blob, long at, ReadOnlyMemory<byte> block, CancellationToken cancellationToken)
    {
        if ((await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.ContentLength != at + block.Length) return false;
        var tail = await blob.DownloadContentAsync(new BlobDownloadOptions { Range = new HttpRange(at, block.Length) }, cancellationToken);
        return tail.Value.Content.ToMemory().Span.SequenceEqual(block.Span);
    }
}
