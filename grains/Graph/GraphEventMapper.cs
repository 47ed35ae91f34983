using System.Globalization;
using Keystone.Events;

namespace Keystone.Graph;

/// <summary>
/// The parse and validate steps of the graph chain (docs/architecture.md, Real-time graph): event → the nodes it updates, from each source node's
/// side. Reverse entries and derived facts follow from what the source nodes report back (see the operator).
/// <list type="bullet">
/// <item>playback (<c>video.play.*</c>): User –WATCHES→ Video, User –USES→ Device;</item>
/// <item><c>user.login</c>: User –USES→ Device, User –HAS→ Profile when a profile is named;</item>
/// <item><c>user.profile_switch</c>: User –HAS→ both profiles, –USES→ Device when named;</item>
/// <item><c>profile.created</c>: User –HAS→ Profile, and the profile's properties;</item>
/// <item><c>content.added</c> / <c>content.metadata_updated</c>: Video –BELONGS_TO→ Series, Video –HAS_GENRE→ Genre, and the title's properties.</item>
/// </list>
/// </summary>
public static class GraphEventMapper
{
    public const int MaxGenres = 32;

    public static bool IsPlayback(string eventType) => eventType.StartsWith("video.play.", StringComparison.Ordinal);

    /// <summary>The updates of <paramref name="e"/>, or a reason it cannot be applied (a missing or unusable id).</summary>
    public static IReadOnlyList<NodeUpdate> Map(KeystoneEvent e, out string? problem)
    {
        problem = null;
        var p = e.Payload;
        // Exact arrays rather than growing lists: this runs for every event of the graph topic.
        switch (e.EventType)
        {
            case var t when IsPlayback(t):
            {
                if (!Id(p.GetString("user_id"), "user_id", ref problem, out var user) || !Id(p.GetString("video_id"), "video_id", ref problem, out var video)) return [];
                (EdgeLabel, string)[] edges = OptionalId(p.GetString("device_id"), "device_id", ref problem) is { } device
                    ? [(EdgeLabel.Watches, video), (EdgeLabel.Uses, device)]
                    : [(EdgeLabel.Watches, video)];
                return One(new NodeUpdate(NodeType.User, user, edges, Empty));
            }
            case "user.login":
            {
                if (!Id(p.GetString("user_id"), "user_id", ref problem, out var user) || !Id(p.GetString("device_id"), "device_id", ref problem, out var device)) return [];
                (EdgeLabel, string)[] edges = OptionalId(p.GetString("profile_id"), "profile_id", ref problem) is { } profile
                    ? [(EdgeLabel.Uses, device), (EdgeLabel.Has, profile)]
                    : [(EdgeLabel.Uses, device)];
                return One(new NodeUpdate(NodeType.User, user, edges, Empty));
            }
            case "user.profile_switch":
            {
                if (!Id(p.GetString("user_id"), "user_id", ref problem, out var user) || !Id(p.GetString("profile_id"), "profile_id", ref problem, out var profile)) return [];
                var edges = new List<(EdgeLabel, string)>(3) { (EdgeLabel.Has, profile) };
                if (OptionalId(p.GetString("from_profile_id"), "from_profile_id", ref problem) is { } from && from != profile) edges.Add((EdgeLabel.Has, from));
                if (OptionalId(p.GetString("device_id"), "device_id", ref problem) is { } device) edges.Add((EdgeLabel.Uses, device));
                return One(new NodeUpdate(NodeType.User, user, edges, Empty));
            }
            case "profile.created":
            {
                if (!Id(p.GetString("user_id"), "user_id", ref problem, out var user) || !Id(p.GetString("profile_id"), "profile_id", ref problem, out var profile)) return [];
                return new[]
                {
                    new NodeUpdate(NodeType.User, user, new[] { (EdgeLabel.Has, profile) }, Empty),
                    new NodeUpdate(NodeType.Profile, profile, [], Properties(p, ("user_id", false), ("profile_name", false), ("maturity_level", false), ("language", false))),
                };
            }
            case "content.added":
            case "content.metadata_updated":
            {
                if (!Id(p.GetString("video_id"), "video_id", ref problem, out var video)) return [];
                var edges = new List<(EdgeLabel, string)>();
                if (OptionalId(p.GetString("series_id"), "series_id", ref problem) is { } series) edges.Add((EdgeLabel.BelongsTo, series));
                if (p.GetStringArray("genres") is { } genres)
                    foreach (var g in genres.Distinct(StringComparer.Ordinal).Take(MaxGenres))
                        if (OptionalId(g, "genres[]", ref problem) is { } genre) edges.Add((EdgeLabel.HasGenre, genre));
                return One(new NodeUpdate(NodeType.Video, video, edges,
                    Properties(p, ("title", false), ("series_id", false), ("duration_ms", true), ("season", true), ("episode", true), ("release_year", true))));
            }
            default:
                problem = $"event type '{e.EventType}' does not update the graph";
                return [];
        }
    }

    private static NodeUpdate[] One(NodeUpdate update) => [update];

    private static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>();

    private static bool Id(string? value, string field, ref string? problem, out string id)
    {
        id = value ?? "";
        if (value is null)
        {
            problem = $"'{field}' is missing";
            return false;
        }
        if (EntityIds.Problem(value, field) is { } bad)
        {
            problem = bad;
            return false;
        }
        return true;
    }

    // An unusable optional id drops that edge only, and says why.
    private static string? OptionalId(string? value, string field, ref string? problem)
    {
        if (value is null) return null;
        if (EntityIds.Problem(value, field) is { } bad)
        {
            problem = bad;
            return null;
        }
        return value;
    }

    private static Dictionary<string, string> Properties(Payload p, params (string Name, bool Number)[] fields)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, number) in fields)
        {
            if (number)
            {
                if (p.GetInt64(name) is { } n) props[name] = n.ToString(CultureInfo.InvariantCulture);
            }
            else if (p.GetString(name) is { } s)
            {
                props[name] = s.Length > 512 ? s[..512] : s;
            }
        }
        return props;
    }
}
