using System.IO.Compression;
using System.Text;
using Keystone.Archive;
using Keystone.Events;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Archive;

public class CompressedLinesTests
{
    private static List<KeystoneEvent> Events(int n) => [.. Enumerable.Range(0, n).Select(i => Sample.PlayStarted(userId: $"user-{i}"))];

    private static string Expected(IEnumerable<KeystoneEvent> events)
    {
        using var buffer = new MemoryStream();
        foreach (var e in events) EventJson.WriteLine(buffer, e);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    // Concatenated members are one gzip file: what the lake's readers see when the members are appended to one blob.
    private static string Decompress(IEnumerable<CompressedChunk> chunks)
    {
        using var blob = new MemoryStream();
        foreach (var chunk in chunks)
        {
            using var member = chunk.OpenRead();
            member.CopyTo(blob);
        }
        blob.Position = 0;
        using var gzip = new GZipStream(blob, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    [Fact]
    public void Sealed_members_decompress_to_the_events_json_lines_in_order()
    {
        var events = Events(200);
        using var lines = new CompressedLines(ArchiveStore.MaxRawBytesPerBlock);
        foreach (var e in events) lines.Add(e);
        lines.Seal();

        var chunk = Assert.Single(lines.Sealed);
        Assert.Equal(200, chunk.Events);
        Assert.Equal(Expected(events), Decompress(lines.Sealed));
        Assert.True(chunk.Length < Encoding.UTF8.GetByteCount(Expected(events)) / 3, $"{chunk.Length} compressed bytes");
    }

    [Fact]
    public void A_member_closes_once_its_raw_lines_pass_the_bound_so_every_chunk_fits_a_block()
    {
        var events = Events(100);
        var lineBytes = Encoding.UTF8.GetByteCount(Expected(events.Take(1)));
        using var lines = new CompressedLines(maxRawBytes: lineBytes * 10);
        foreach (var e in events) lines.Add(e);
        lines.Seal();

        Assert.Equal(10, lines.Sealed.Count);
        Assert.All(lines.Sealed, c => Assert.Equal(10, c.Events));
        Assert.Equal(Expected(events), Decompress(lines.Sealed));
    }

    [Fact]
    public void Only_appended_members_are_dropped_and_events_added_after_a_seal_start_a_new_member()
    {
        var events = Events(30);
        var lineBytes = Encoding.UTF8.GetByteCount(Expected(events.Take(1)));
        using var lines = new CompressedLines(maxRawBytes: lineBytes * 10);
        foreach (var e in events.Take(25)) lines.Add(e);
        lines.Seal();
        Assert.Equal([10, 10, 5], lines.Sealed.Select(c => c.Events));
        Assert.Equal(25, lines.Events);

        // The first append succeeded, the second failed: the failed member and the rest stay for the next attempt.
        lines.Appended();
        Assert.Equal(15, lines.Events);
        foreach (var e in events.Skip(25)) lines.Add(e);
        Assert.Equal(20, lines.Events);
        lines.Seal();

        Assert.Equal([10, 5, 5], lines.Sealed.Select(c => c.Events));
        Assert.Equal(Expected(events.Skip(10)), Decompress(lines.Sealed));
    }

    [Fact]
    public void An_appended_member_and_every_member_left_at_disposal_give_their_pooled_arrays_back()
    {
        var events = Events(30);
        var lineBytes = Encoding.UTF8.GetByteCount(Expected(events.Take(1)));
        var lines = new CompressedLines(maxRawBytes: lineBytes * 10);
        foreach (var e in events) lines.Add(e);
        lines.Seal();
        var first = lines.Sealed[0];
        var rest = lines.Sealed.Skip(1).ToList();

        lines.Appended();
        Assert.Throws<ObjectDisposedException>(() => first.OpenRead());
        Assert.All(rest, c => c.OpenRead().Dispose());

        lines.Dispose();
        Assert.All(rest, c => Assert.Throws<ObjectDisposedException>(() => c.OpenRead()));
    }
}
