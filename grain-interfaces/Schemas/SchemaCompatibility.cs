namespace Keystone.Schemas;

/// <summary>
/// Backward compatibility between schema versions of one event type: a new version may add optional fields and
/// change descriptions, nothing else, so every consumer written for the previous version still reads its events.
/// </summary>
public static class SchemaCompatibility
{
    /// <summary>Every reason <paramref name="next"/> is not a compatible successor of <paramref name="previous"/>; empty when it is.</summary>
    public static IReadOnlyList<string> Problems(EventSchema previous, EventSchema next)
    {
        var problems = new List<string>();
        if (VersionComparer.Instance.Compare(next.Version, previous.Version) <= 0)
            problems.Add($"version {next.Version} must be greater than the latest version {previous.Version}");
        if (next.AdditionalProperties != previous.AdditionalProperties)
            problems.Add($"additionalProperties changed from {Lower(previous.AdditionalProperties)} to {Lower(next.AdditionalProperties)}");
        foreach (var old in previous.Fields)
        {
            if (next.Field(old.Name) is not { } now)
            {
                problems.Add($"field '{old.Name}' was removed");
                continue;
            }
            foreach (var change in Changes(old, now)) problems.Add($"field '{old.Name}': {change}");
        }
        foreach (var added in next.Fields.Where(f => previous.Field(f.Name) is null && f.Required))
            problems.Add($"new field '{added.Name}' is required; a new version may only add optional fields");
        return problems;
    }

    private static IEnumerable<string> Changes(FieldSchema a, FieldSchema b)
    {
        if (a.TypeName != b.TypeName) yield return $"type changed from {a.TypeName} to {b.TypeName}";
        if (a.Required != b.Required) yield return a.Required ? "is no longer required" : "became required";
        if (a.Nullable != b.Nullable) yield return $"nullable changed from {Lower(a.Nullable)} to {Lower(b.Nullable)}";
        if (!SameList(a.Enum, b.Enum)) yield return $"allowed values changed from [{string.Join(", ", a.Enum ?? [])}] to [{string.Join(", ", b.Enum ?? [])}]";
        if (a.Minimum != b.Minimum || a.Maximum != b.Maximum) yield return $"range changed from [{a.Minimum}, {a.Maximum}] to [{b.Minimum}, {b.Maximum}]";
        if (a.MinLength != b.MinLength || a.MaxLength != b.MaxLength) yield return $"length bounds changed from [{a.MinLength}, {a.MaxLength}] to [{b.MinLength}, {b.MaxLength}]";
        if (a.Pattern != b.Pattern) yield return $"pattern changed from '{a.Pattern}' to '{b.Pattern}'";
        if (a.Format != b.Format) yield return $"format changed from '{a.Format}' to '{b.Format}'";
        if (a.MaxItems != b.MaxItems) yield return $"maxItems changed from {a.MaxItems} to {b.MaxItems}";
        if (a.Pii != b.Pii) yield return $"x-pii changed from {Lower(a.Pii)} to {Lower(b.Pii)}";
    }

    private static bool SameList(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        (a is null && b is null) || (a is not null && b is not null && a.SequenceEqual(b));

    private static string Lower(bool value) => value ? "true" : "false";
}
