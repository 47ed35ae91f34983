using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Keystone.Client.Publishing;
using Keystone.Client.Simulation;

namespace Keystone.Cli;

/// <summary>Text the commands print, kept apart from I/O so it can be tested.</summary>
internal static partial class Formatting
{
    public static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string Rate(double perSecond) => perSecond.ToString(perSecond >= 100 ? "N0" : "0.#", CultureInfo.InvariantCulture);

    /// <summary>One progress line for <c>keystone simulate</c>.</summary>
    public static string Progress(SimulationProgress p) => Progress(p.Elapsed, p.RatePerSecond, p.Generated, p.Publisher);

    public static string Progress(TimeSpan elapsed, double rate, long generated, PublisherSnapshot s) =>
        $"{Elapsed(elapsed)}  {Rate(rate)} ev/s  generated {Count(generated)}  published {Count(s.Published)}  rejected {Count(s.Rejected)}  " +
        $"retried {Count(s.Retried)}  dead-lettered {Count(s.DeadLettered)}  queue {Count(s.QueueDepth)}";

    /// <summary><c>mm:ss</c>, or <c>h:mm:ss</c> past an hour.</summary>
    public static string Elapsed(TimeSpan t) => t.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
        : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes:00}:{t.Seconds:00}");

    /// <summary>How long ago something happened: <c>4s ago</c>, <c>3m ago</c>, <c>2h ago</c>, <c>5d ago</c>; <c>never</c> for null.</summary>
    public static string Age(DateTimeOffset? at, DateTimeOffset now)
    {
        if (at is not { } when) return "never";
        var age = now - when;
        if (age < TimeSpan.FromSeconds(1)) return "just now";
        if (age < TimeSpan.FromMinutes(1)) return $"{(int)age.TotalSeconds}s ago";
        if (age < TimeSpan.FromHours(1)) return $"{(int)age.TotalMinutes}m ago";
        if (age < TimeSpan.FromDays(1)) return $"{(int)age.TotalHours}h ago";
        return $"{(int)age.TotalDays}d ago";
    }

    public static string Millis(double ms) => ms switch
    {
        <= 0 => "-",
        < 10 => ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms",
        < 10_000 => ms.ToString("N0", CultureInfo.InvariantCulture) + " ms",
        _ => (ms / 1000).ToString("N1", CultureInfo.InvariantCulture) + " s",
    };

    /// <summary>A plain-text table; columns listed in <paramref name="rightAligned"/> (numbers) are aligned right.</summary>
    public static string Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, ISet<int>? rightAligned = null)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(IReadOnlyList<string> cells)
        {
            var line = new StringBuilder();
            for (var i = 0; i < cells.Count; i++)
            {
                if (i > 0) line.Append("  ");
                var right = rightAligned?.Contains(i) == true;
                line.Append(right ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i]));
            }
            text.Append(line.ToString().TrimEnd()).Append('\n');
        }
        Line(headers);
        foreach (var row in all) Line(row);
        return text.ToString();
    }

    /// <summary><c>line 7 (event_id 3f2a…): payload.user_id: required field is missing</c>.</summary>
    public static string Rejection(string location, string? eventId, string field, string error)
    {
        var id = string.IsNullOrEmpty(eventId) ? "" : $" (event_id {eventId})";
        var reason = CleanReason(error);
        // Schema errors already read "field: reason"; parse errors may not name the field.
        return string.IsNullOrEmpty(field) || reason.StartsWith(field + ": ", StringComparison.Ordinal)
            ? $"{location}{id}: {reason}"
            : $"{location}{id}: {field}: {reason}";
    }

    /// <summary>
    /// Drops what the location already says: the parser's "line N: " prefix, and the JSON reader's position within
    /// the line ("LineNumber: 0 | BytePositionInLine: 61", "(line 1, byte 62)"), keeping the byte.
    /// </summary>
    internal static string CleanReason(string error)
    {
        var text = LinePrefix().Replace(error, "", 1);
        text = ReaderPosition().Replace(text, "");
        return FirstLineOfRecord().Replace(text, "(byte $1)");
    }

    /// <summary>A whole-file parse error, without the JSON reader's duplicate position ("LineNumber: 1 | BytePositionInLine: 0").</summary>
    internal static string CleanBodyError(string error) => ReaderPosition().Replace(error, "");

    [GeneratedRegex(@"^line \d+: ")]
    private static partial Regex LinePrefix();

    [GeneratedRegex(@" ?LineNumber: \d+ \| BytePositionInLine: \d+\.?")]
    private static partial Regex ReaderPosition();

    [GeneratedRegex(@"\(line 1, byte (\d+)\)")]
    private static partial Regex FirstLineOfRecord();
}
