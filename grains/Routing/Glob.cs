namespace Keystone.Routing;

/// <summary>
/// A shell-style pattern: <c>*</c> matches any run of characters (including none), <c>?</c> exactly one. Matching
/// is ordinal and case-sensitive; the common shapes (exact, prefix*, *suffix, *) skip the general matcher.
/// </summary>
public sealed class Glob
{
    private enum Shape { Any, Exact, Prefix, Suffix, General }

    private readonly Shape _shape;
    private readonly string _literal;

    public Glob(string pattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        Pattern = pattern;
        var stars = pattern.Count(c => c == '*');
        var hasQuestion = pattern.Contains('?');
        if (pattern.All(c => c == '*')) (_shape, _literal) = (Shape.Any, "");
        else if (stars == 0 && !hasQuestion) (_shape, _literal) = (Shape.Exact, pattern);
        else if (stars == 1 && !hasQuestion && pattern[^1] == '*') (_shape, _literal) = (Shape.Prefix, pattern[..^1]);
        else if (stars == 1 && !hasQuestion && pattern[0] == '*') (_shape, _literal) = (Shape.Suffix, pattern[1..]);
        else (_shape, _literal) = (Shape.General, pattern);
    }

    public string Pattern { get; }

    public bool MatchesEverything => _shape == Shape.Any;

    /// <summary>Why <paramref name="pattern"/> cannot be a glob, or null when it can.</summary>
    public static string? Check(string? pattern)
    {
        if (string.IsNullOrEmpty(pattern)) return "a pattern must not be empty";
        if (pattern.Length > 256) return "a pattern must be at most 256 characters long";
        foreach (var c in pattern)
        {
            if (char.IsControl(c) || char.IsWhiteSpace(c))
                return $"'{pattern}' contains whitespace or a control character";
            if (c is '[' or ']' or '{' or '}' or '\\')
                return $"'{pattern}' uses '{c}', which is not supported (only * and ? are wildcards)";
        }
        return null;
    }

    public bool IsMatch(string? value)
    {
        if (value is null) return _shape == Shape.Any;
        return _shape switch
        {
            Shape.Any => true,
            Shape.Exact => string.Equals(value, _literal, StringComparison.Ordinal),
            Shape.Prefix => value.StartsWith(_literal, StringComparison.Ordinal),
            Shape.Suffix => value.EndsWith(_literal, StringComparison.Ordinal),
            _ => Wildcard(value, _literal),
        };
    }

    // Linear-time wildcard matching with single backtrack point (no regex, so no catastrophic patterns).
    private static bool Wildcard(string text, string pattern)
    {
        int t = 0, p = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                t++;
                p++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }

    public override string ToString() => Pattern;
}
