using System.Globalization;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>Reads samples out of a silo's <c>/metrics</c> (Prometheus' text format).</summary>
public static class PrometheusText
{
    /// <summary>Each sample of <paramref name="name"/>: its label set (inside the braces; empty when none) and its value.</summary>
    public static IEnumerable<(string Labels, double Value)> Samples(string exported, string name)
    {
        foreach (var line in exported.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length == name.Length) continue;
            var labels = "";
            var at = name.Length;
            if (line[at] == '{')
            {
                var close = line.IndexOf('}', at);
                if (close < 0) continue;
                labels = line[(at + 1)..close];
                at = close + 1;
            }
            if (at >= line.Length || line[at] != ' ') continue;
            yield return (labels, double.Parse(line[(at + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The value of one label in a label set from <see cref="Samples"/>; null when it is not there.</summary>
    public static string? Label(string labels, string key)
    {
        var start = labels.IndexOf(key + "=\"", StringComparison.Ordinal);
        if (start < 0 || (start > 0 && labels[start - 1] != ',')) return null;
        start += key.Length + 2;
        return labels[start..labels.IndexOf('"', start)];
    }
}
