using System.CommandLine;
using System.Globalization;
using Keystone.Events;
using Keystone.Lake;

namespace Keystone.Cli.Commands;

/// <summary><c>keystone query "&lt;sql&gt;" --from --to</c>: SQL over the Parquet lake, printed as a table.</summary>
internal static class QueryCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var sql = new Argument<string>("sql") { Description = "One SELECT over the views events and activity_windows, e.g. \"SELECT event_type, count(*) FROM events GROUP BY 1\"." };
        var from = new Option<string>("--from") { Description = "Start of the event-time range, ISO-8601 with an offset (inclusive).", Required = true };
        var to = new Option<string>("--to") { Description = "End of the event-time range, ISO-8601 with an offset (exclusive).", Required = true };
        var command = new Command("query", "Run read-only SQL over the columnar lake (the compacted hours of [from, to)) and print a table.") { sql, from, to };
        CommandRunner.SetAction(command, globals, async context =>
        {
            var query = Parse(context.Parse.GetValue(sql)!, context.Parse.GetValue(from)!, context.Parse.GetValue(to)!);
            await using var connection = await context.ConnectAsync();
            AnalyticsResult result;
            try
            {
                result = await connection.Client.GetGrain<IAnalyticsGrain>(0).Query(query);
            }
            catch (ArgumentException e)
            {
                throw new CliException(ExitCodes.Failed, "query refused: " + e.Message);
            }
            catch (LakeUnavailableException e)
            {
                throw new CliException(ExitCodes.Unreachable, "the lake is unavailable: " + e.Message, e);
            }
            Console.Write(Render(result));
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static AnalyticsQuery Parse(string sql, string from, string to)
    {
        if (string.IsNullOrWhiteSpace(sql)) throw CliException.Usage("the SQL text is empty.");
        if (!EventJson.TryParseTimestamp(from, out var start)) throw CliException.Usage($"--from '{from}' is not an ISO-8601 date-time with an offset (e.g. 2026-11-27T04:00:00Z).");
        if (!EventJson.TryParseTimestamp(to, out var end)) throw CliException.Usage($"--to '{to}' is not an ISO-8601 date-time with an offset (e.g. 2026-11-27T05:00:00Z).");
        if (end <= start) throw CliException.Usage("--to must be later than --from.");
        return new AnalyticsQuery(sql, start, end);
    }

    internal static string Render(AnalyticsResult result)
    {
        var numeric = new HashSet<int>(result.Columns.Select((c, i) => (c, i))
            .Where(x => x.c.Type is "BIGINT" or "INTEGER" or "HUGEINT" or "DOUBLE" or "FLOAT" or "SMALLINT" or "TINYINT" or "UBIGINT" or "DECIMAL" || x.c.Type.StartsWith("DECIMAL", StringComparison.Ordinal))
            .Select(x => x.i));
        var rows = result.Rows.Select(r => (IReadOnlyList<string>)[.. r.Select(Cell)]);
        var table = Formatting.Table([.. result.Columns.Select(c => c.Name)], rows, numeric);
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"({result.Rows.Count} row{(result.Rows.Count == 1 ? "" : "s")}, {result.Hours} hour{(result.Hours == 1 ? "" : "s")}, {result.Files} file{(result.Files == 1 ? "" : "s")}, {result.ElapsedMs:0} ms)\n");
        return table + summary;
    }

    private static string Cell(object? value) => value switch
    {
        null => "NULL",
        double d => d.ToString("0.######", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
