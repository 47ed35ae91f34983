using System.Globalization;

namespace Keystone.Cli;

/// <summary>
/// Reads the durations people type on a command line: <c>30s</c>, <c>250ms</c>, <c>5m</c>, <c>1h</c>, <c>1m30s</c>,
/// <c>1.5s</c>, or a plain number of seconds (<c>90</c>).
/// </summary>
internal static class DurationParser
{
    private const string Examples = "use a number with a unit such as 250ms, 30s, 5m, 1h or 1m30s (a plain number means seconds)";

    /// <summary>Parses a positive duration; throws <see cref="FormatException"/> naming the text and the accepted forms.</summary>
    public static TimeSpan Parse(string? text)
    {
        var trimmed = text?.Trim();
        if (string.IsNullOrEmpty(trimmed)) throw new FormatException($"A duration is required; {Examples}.");

        if (double.TryParse(trimmed, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var plainSeconds))
            return Checked(trimmed, plainSeconds * TimeSpan.TicksPerSecond);

        double ticks = 0;
        var span = trimmed.AsSpan();
        string? previousUnit = null;
        while (!span.IsEmpty)
        {
            var numberLength = 0;
            while (numberLength < span.Length && (char.IsAsciiDigit(span[numberLength]) || span[numberLength] == '.')) numberLength++;
            if (numberLength == 0 || !double.TryParse(span[..numberLength], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
                throw Invalid(trimmed);
            span = span[numberLength..];

            var unitLength = 0;
            while (unitLength < span.Length && char.IsAsciiLetter(span[unitLength])) unitLength++;
            var unit = span[..unitLength].ToString().ToLowerInvariant();
            span = span[unitLength..];
            var (perUnit, rank) = unit switch
            {
                "ms" => (TimeSpan.TicksPerMillisecond, 0),
                "s" or "sec" => (TimeSpan.TicksPerSecond, 1),
                "m" or "min" => (TimeSpan.TicksPerMinute, 2),
                "h" => (TimeSpan.TicksPerHour, 3),
                "d" => (TimeSpan.TicksPerDay, 4),
                _ => throw Invalid(trimmed),
            };
            // "5s1m" or "1m1m" are more likely typos than intent.
            if (previousUnit is not null && RankOf(previousUnit) <= rank) throw Invalid(trimmed);
            previousUnit = unit;
            ticks += number * perUnit;
        }
        return Checked(trimmed, ticks);
    }

    /// <summary>Short human form for output: <c>250ms</c>, <c>4.2s</c>, <c>5m</c>, <c>1h30m</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.FromSeconds(1)) return $"{(long)value.TotalMilliseconds}ms";
        if (value < TimeSpan.FromMinutes(1))
            return value.TotalSeconds == Math.Floor(value.TotalSeconds)
                ? $"{(long)value.TotalSeconds}s"
                : value.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
        var parts = new List<string>(3);
        var hours = (long)value.TotalHours;
        if (hours > 0) parts.Add($"{hours}h");
        if (value.Minutes > 0) parts.Add($"{value.Minutes}m");
        if (value.Seconds > 0) parts.Add($"{value.Seconds}s");
        return string.Concat(parts);
    }

    private static int RankOf(string unit) => unit switch
    {
        "ms" => 0,
        "s" or "sec" => 1,
        "m" or "min" => 2,
        "h" => 3,
        _ => 4,
    };

    private static TimeSpan Checked(string text, double ticks)
    {
        if (double.IsNaN(ticks) || ticks >= TimeSpan.MaxValue.Ticks) throw new FormatException($"'{text}' is too long a duration.");
        var value = TimeSpan.FromTicks((long)Math.Round(ticks));
        if (value <= TimeSpan.Zero) throw new FormatException($"'{text}' is not a positive duration; {Examples}.");
        return value;
    }

    private static FormatException Invalid(string text) => new($"'{text}' is not a duration; {Examples}.");
}
