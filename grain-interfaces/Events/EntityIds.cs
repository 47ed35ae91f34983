namespace Keystone.Events;

/// <summary>The rule for entity ids taken from callers (users, videos, profiles, campaigns): they end up in grain keys and blob names.</summary>
public static class EntityIds
{
    public const int MaxLength = 128;

    /// <summary>Why <paramref name="id"/> is not acceptable, naming it <paramref name="what"/>; null when it is.</summary>
    public static string? Problem(string id, string what)
    {
        if (id.Length is 0 or > MaxLength) return $"{what} must be 1 to {MaxLength} characters long";
        foreach (var c in id)
            if (char.IsControl(c) || c is '/' or '\\' || char.IsWhiteSpace(c))
                return $"{what} must not contain whitespace, control characters or slashes";
        return id is "." or ".." ? $"{what} '{id}' is not allowed" : null;
    }
}
