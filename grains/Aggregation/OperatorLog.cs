using System.Buffers.Binary;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace Keystone.Aggregation;

/// <summary>One record of an operator's write-ahead log.</summary>
public sealed record LogRecord(long Sequence, byte[] Payload);

/// <summary>
/// A window operator's write-ahead log: what it received, made durable before the stream delivery is acknowledged.
/// Segments are numbered; a checkpoint starts a new one and lets the older ones go.
/// </summary>
public interface IOperatorLog
{
    Task AppendAsync(long segment, long sequence, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default);

    /// <summary>Records of every segment from <paramref name="fromSegment"/> on, in order.</summary>
    Task<IReadOnlyList<LogRecord>> ReadAsync(long fromSegment, CancellationToken cancellationToken = default);

    Task DeleteBeforeAsync(long segment, CancellationToken cancellationToken = default);
}

public interface IOperatorLogFactory
{
    IOperatorLog Open(string name);
}

/// <summary>
/// The log on Azure Blob storage: one append blob per segment (<c>{name}/{segment}</c>), one block per delivery,
/// framed as length (4 bytes), sequence (8 bytes), payload. A block is at most 4 MiB, more than a delivery holds.
/// </summary>
public sealed class BlobOperatorLogFactory(BlobContainerClient container) : IOperatorLogFactory
{
    private readonly Keystone.Storage.ContainerOnce _container = new(container);

    public IOperatorLog Open(string name) => new BlobOperatorLog(this, name);

    private Task EnsureContainer(CancellationToken cancellationToken) => _container.ReadyAsync(cancellationToken);

    private sealed class BlobOperatorLog(BlobOperatorLogFactory factory, string name) : IOperatorLog
    {
        // Where each segment written by this log ends (AppendOnce); an append that failed forgets it, to read it again.
        private readonly Dictionary<long, long> _lengths = [];

        private static string BlobName(string name, long segment) => $"{name}/{segment:D12}";

        public async Task AppendAsync(long segment, long sequence, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
        {
            await factory.EnsureContainer(cancellationToken);
            var blob = factory.Container.GetAppendBlobClient(BlobName(name, segment));
            if (!_lengths.TryGetValue(segment, out var length)) length = await Keystone.Storage.AppendOnce.CreateAsync(blob, cancellationToken);
            var framed = new byte[12 + payload.Length];
            BinaryPrimitives.WriteInt32LittleEndian(framed, payload.Length);
            BinaryPrimitives.WriteInt64LittleEndian(framed.AsSpan(4), sequence);
            payload.Span.CopyTo(framed.AsSpan(12));
            _lengths.Remove(segment);
            _lengths[segment] = await Keystone.Storage.AppendOnce.AppendAsync(blob, length, framed, cancellationToken);
        }

        public async Task<IReadOnlyList<LogRecord>> ReadAsync(long fromSegment, CancellationToken cancellationToken = default)
        {
            await factory.EnsureContainer(cancellationToken);
            var segments = new List<(long Segment, string Blob)>();
            await foreach (var item in factory.Container.GetBlobsAsync(BlobTraits.None, BlobStates.None, name + "/", cancellationToken))
            {
                if (long.TryParse(item.Name[(name.Length + 1)..], out var segment) && segment >= fromSegment)
                    segments.Add((segment, item.Name));
            }
            var records = new List<LogRecord>();
            foreach (var (_, blobName) in segments.OrderBy(s => s.Segment))
            {
                BinaryData content;
                try
                {
                    content = (await factory.Container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken)).Value.Content;
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    continue;
                }
                var data = content.ToMemory();
                var position = 0;
                while (position + 12 <= data.Length)
                {
                    var length = BinaryPrimitives.ReadInt32LittleEndian(data.Span[position..]);
                    var sequence = BinaryPrimitives.ReadInt64LittleEndian(data.Span[(position + 4)..]);
                    if (length < 0 || position + 12 + length > data.Length)
                        throw new InvalidDataException($"write-ahead log {blobName} is truncated at byte {position}");
                    records.Add(new LogRecord(sequence, data.Slice(position + 12, length).ToArray()));
                    position += 12 + length;
                }
            }
            return records;
        }

        public async Task DeleteBeforeAsync(long segment, CancellationToken cancellationToken = default)
        {
            await factory.EnsureContainer(cancellationToken);
            var old = new List<string>();
            await foreach (var item in factory.Container.GetBlobsAsync(BlobTraits.None, BlobStates.None, name + "/", cancellationToken))
                if (long.TryParse(item.Name[(name.Length + 1)..], out var s) && s < segment) old.Add(item.Name);
            foreach (var blob in old)
            {
                await factory.Container.GetBlobClient(blob).DeleteIfExistsAsync(cancellationToken: cancellationToken);
                _lengths.Remove(long.Parse(blob[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    private BlobContainerClient Container => container;
}
