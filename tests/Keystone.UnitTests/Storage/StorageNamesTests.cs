using Keystone.Events;
using Keystone.Graph;
using Keystone.Silo.Hosting;
using Keystone.Storage;

namespace Keystone.UnitTests.Storage;

public class StorageNamesTests
{
    // Ids that look like encodings, escapes or each other once case, dots or separators are ignored.
    private static readonly string[] Tricky =
    [
        "a", "A", "a.", "a..", "...", ".a", "a%2F", "a%2f", "a~", "~a", "~", "~0", "0", "a_b", "a-b", "a.b", "josé", "jose\u0301",
        "用户.1", "用户", "😀", "ñ", "Ñ", "a b", "a/b", "a\\b", "a\0", "", "~c5", "%C3%B1", "_x", "x_", "-", "--",
    ];

    [Fact]
    public void Plain_ids_keep_their_name_so_existing_state_keeps_loading()
    {
        foreach (var id in new[] { "user-123", "stranger-things-s4e01", "profile_456", "a.b.c", ".hidden", "A-Z.0_9", new string('x', 128) })
            Assert.Same(id, StorageNames.Segment(id));
    }

    [Fact]
    public void Other_ids_are_encoded_after_a_marker_plain_ids_cannot_contain()
    {
        Assert.Equal("~d9nn7gt95n1r2", StorageNames.Segment("josé-ñ"));
        Assert.StartsWith("~", StorageNames.Segment("a."));
        Assert.StartsWith("~", StorageNames.Segment("a~"));
        Assert.StartsWith("~", StorageNames.Segment("a%2F"));
        Assert.Equal("~", StorageNames.Segment(""));
    }

    [Fact]
    public void Encoding_round_trips_and_never_collides()
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var id in Tricky)
        {
            var name = StorageNames.Segment(id);
            Assert.Equal(id, StorageNames.DecodeSegment(name));
            Assert.True(names.TryAdd(name, id), $"'{id}' and '{names.GetValueOrDefault(name)}' share the name '{name}'");
        }
    }

    [Fact]
    public void Names_are_url_safe_ascii_without_a_trailing_dot_and_fit_a_blob_name()
    {
        foreach (var id in Tricky.Append(string.Concat(Enumerable.Repeat("用", EntityIds.MaxLength))).Append(string.Concat(Enumerable.Repeat("😀", EntityIds.MaxLength / 2))))
        {
            var name = StorageNames.Segment(id);
            Assert.All(name, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '~', $"'{c}' in '{name}'"));
            Assert.False(name.EndsWith('.'), name);
            Assert.True(name.Length <= 620, $"{name.Length} characters");
        }
    }

    [Fact]
    public void Keys_are_encoded_segment_by_segment()
    {
        Assert.Same("tap-topic/3", StorageNames.Key("tap-topic/3"));
        Assert.Equal("device/" + StorageNames.Segment("tv de salón"), StorageNames.Key("device/tv de salón"));
        Assert.Equal(StorageNames.Segment("用户.1"), StorageNames.Key("用户.1"));
        Assert.NotEqual(StorageNames.Key("a/b"), StorageNames.Key(StorageNames.Segment("a/b")));
    }

    [Fact]
    public void Graph_pages_use_the_encoding()
    {
        Assert.Equal("video/" + StorageNames.Segment("视频.1.") + "/WATCHES/00000002.json", GraphPageStore.BlobName(NodeType.Video, "视频.1.", EdgeLabel.Watches, 2));
        Assert.Equal("video/v-1/WATCHES/00000002.json", GraphPageStore.BlobName(NodeType.Video, "v-1", EdgeLabel.Watches, 2));
    }
}
