namespace Keystone.Lake;

/// <summary>The guard's answer: the statement to run (a trailing semicolon removed), or why the query is refused.</summary>
public sealed record SqlVerdict(bool Allowed, string? Reason, string Statement)
{
    public static SqlVerdict Refuse(string reason) => new(false, reason, "");
}

/// <summary>
/// Lets through one read-only SELECT over the lake's views and nothing else: no second statement, no statement that
/// writes, attaches, installs, loads or changes a setting, no table or scalar function that reads files or the
/// engine's configuration, no table but <c>events</c>, <c>activity_windows</c> and the query's own CTEs. Pure logic on
/// a tokenizer that knows DuckDB's comments, strings and quoted identifiers; the engine is locked down as well (no file
/// access outside the cache, configuration locked), so the guard is the first of two walls, and the one that names
/// the reason.
/// </summary>
public sealed class SqlGuard(int maxLength = 20_000)
{
    public static readonly IReadOnlySet<string> Tables = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { LakeSchema.EventsTable, LakeSchema.WindowsTable };

    private static readonly HashSet<string> DeniedKeywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "FORCE", "PRAGMA", "SET", "RESET", "INSERT", "UPDATE", "DELETE",
        "CREATE", "DROP", "ALTER", "EXPORT", "IMPORT", "CALL", "CHECKPOINT", "VACUUM", "USE", "TRUNCATE", "MERGE",
        "GRANT", "REVOKE", "EXECUTE", "PREPARE", "DEALLOCATE", "BEGIN", "COMMIT", "ROLLBACK", "ABORT", "TRANSACTION",
        "ANALYZE", "UPSERT", "SECRET",
    };

    private static readonly HashSet<string> DeniedFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "glob", "getenv", "query", "query_table", "sniff_csv", "current_setting", "which_secret", "load_extension",
        "json_execute_serialized_sql", "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
        "parquet_bloom_probe", "checkpoint", "force_checkpoint", "enable_logging", "disable_logging", "set_variable",
    };

    private static readonly string[] DeniedPrefixes = ["read_", "duckdb_", "pragma_", "sqlite_", "postgres_", "mysql_", "iceberg_", "delta_", "ducklake_", "http"];

    private static readonly HashSet<string> AllowedTableFunctions = new(StringComparer.OrdinalIgnoreCase) { "range", "generate_series", "unnest" };

    private static readonly HashSet<string> ClauseEnds = new(StringComparer.OrdinalIgnoreCase)
    {
        "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "QUALIFY", "WINDOW", "UNION", "EXCEPT", "INTERSECT", "SELECT",
    };

    public SqlVerdict Check(string? sql)
    {
        if (string.IsNullOrWhiteSpace(sql)) return SqlVerdict.Refuse("sql: the query is empty");
        if (sql.Length > maxLength) return SqlVerdict.Refuse($"sql: the query is longer than {maxLength} characters");
        if (sql.Contains('\0')) return SqlVerdict.Refuse("sql: the query contains a NUL character");

        List<Token> tokens;
        try
        {
            tokens = Tokenize(sql);
        }
        catch (FormatException e)
        {
            return SqlVerdict.Refuse("sql: " + e.Message);
        }
        // One statement: a semicolon may only end the text.
        var last = tokens.Count;
        while (last > 0 && tokens[last - 1].Is(";")) last--;
        if (tokens.Take(last).Any(t => t.Is(";"))) return SqlVerdict.Refuse("sql: only one statement is allowed (found ';' before the end)");
        tokens = tokens.Take(last).ToList();
        if (tokens.Count == 0) return SqlVerdict.Refuse("sql: the query is empty");

        var first = tokens[0];
        if (!(first.IsWord("SELECT") || first.IsWord("WITH") || first.IsWord("FROM") || first.Is("(")))
            return SqlVerdict.Refuse($"sql: only a SELECT query is allowed, not '{first.Text.ToUpperInvariant()}'");

        foreach (var t in tokens)
            if (t.Kind == Kind.Word && DeniedKeywords.Contains(t.Text))
                return SqlVerdict.Refuse($"sql: '{t.Text.ToUpperInvariant()}' is not allowed: the lake is read-only and closed to files, extensions and settings (quote it, \"{t.Text.ToLowerInvariant()}\", if it is a name)");

        var ctes = CteNames(tokens);
        // Per parenthesis depth: is it a function call's argument list (where FROM is EXTRACT's or TRIM's), and is a FROM clause open?
        var isCall = new Stack<bool>();
        var inFrom = new Stack<bool>();
        isCall.Push(false);
        inFrom.Push(false);
        var expectSource = false;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var next = i + 1 < tokens.Count ? tokens[i + 1] : null;

            if (expectSource)
            {
                expectSource = false;
                if (t.IsWord("LATERAL")) { expectSource = true; continue; }
                if (t.Kind == Kind.String) return SqlVerdict.Refuse($"sql: reading files is not allowed (FROM '{t.Text}'); query the views events and activity_windows");
                if (t.Kind is Kind.Word or Kind.QuotedName)
                {
                    if (next is not null && next.Is("."))
                        return SqlVerdict.Refuse($"sql: qualified names ('{t.Text}.…') are not allowed; query the views events and activity_windows");
                    if (next is not null && next.Is("("))
                    {
                        if (!AllowedTableFunctions.Contains(t.Text))
                            return SqlVerdict.Refuse($"sql: table function '{t.Text}' is not allowed; query the views events and activity_windows");
                    }
                    else if (!Tables.Contains(t.Text) && !ctes.Contains(t.Text))
                        return SqlVerdict.Refuse($"sql: unknown table '{t.Text}'; query the views events and activity_windows");
                }
                else if (!t.Is("("))
                    return SqlVerdict.Refuse($"sql: unexpected '{t.Text}' where a table was expected");
            }

            if (t.Kind is Kind.Word or Kind.QuotedName && next is not null && next.Is("(") && DeniedFunction(t.Text) is { } why)
                return SqlVerdict.Refuse($"sql: function '{t.Text}' is not allowed ({why})");

            if (t.Is("("))
            {
                var previous = i > 0 ? tokens[i - 1] : null;
                isCall.Push(previous is not null && previous.Kind == Kind.Word && FromInArguments(previous.Text));
                inFrom.Push(false);
            }
            else if (t.Is(")"))
            {
                if (isCall.Count == 1) return SqlVerdict.Refuse("sql: unbalanced ')'");
                isCall.Pop();
                inFrom.Pop();
            }
            else if (t.Kind == Kind.Word && !isCall.Peek())
            {
                if (t.IsWord("FROM") || t.IsWord("JOIN"))
                {
                    inFrom.Pop();
                    inFrom.Push(true);
                    expectSource = true;
                }
                else if (ClauseEnds.Contains(t.Text))
                {
                    inFrom.Pop();
                    inFrom.Push(false);
                }
            }
            else if (t.Is(",") && inFrom.Peek() && !isCall.Peek())
            {
                expectSource = true;
            }
        }
        if (expectSource) return SqlVerdict.Refuse("sql: a table is missing after FROM or JOIN");
        if (isCall.Count != 1) return SqlVerdict.Refuse("sql: unbalanced '('");
        return new SqlVerdict(true, null, sql[..tokens[^1].End]);
    }

    // The functions whose arguments use FROM as a keyword: EXTRACT(hour FROM t), TRIM(BOTH 'x' FROM s), ...
    // Everywhere else a FROM opens a table list, inside a subquery or ARRAY(SELECT ...) alike.
    private static bool FromInArguments(string word) => word.ToUpperInvariant() is "EXTRACT" or "TRIM" or "SUBSTRING" or "OVERLAY" or "POSITION";

    private static string? DeniedFunction(string name)
    {
        if (DeniedFunctions.Contains(name)) return "it reads files, runs SQL or reveals the engine's configuration";
        foreach (var prefix in DeniedPrefixes)
            if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return $"'{prefix}*' functions read files or the engine's catalogue";
        if (name.EndsWith("_scan", StringComparison.OrdinalIgnoreCase)) return "'*_scan' functions read files";
        return null;
    }

    private static HashSet<string> CteNames(List<Token> tokens)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i + 2 < tokens.Count; i++)
        {
            if (tokens[i].Kind is not (Kind.Word or Kind.QuotedName)) continue;
            var j = i + 1;
            if (tokens[j].Is("("))
            {
                // name(col, ...) AS (
                var k = j + 1;
                while (k < tokens.Count && (tokens[k].Kind is Kind.Word or Kind.QuotedName || tokens[k].Is(","))) k++;
                if (k >= tokens.Count || !tokens[k].Is(")")) continue;
                j = k + 1;
            }
            if (j >= tokens.Count || !tokens[j].IsWord("AS")) continue;
            j++;
            if (j < tokens.Count && tokens[j].IsWord("NOT")) j++;
            if (j < tokens.Count && tokens[j].IsWord("MATERIALIZED")) j++;
            if (j < tokens.Count && tokens[j].Is("(") && j + 1 < tokens.Count && (tokens[j + 1].IsWord("SELECT") || tokens[j + 1].IsWord("WITH") || tokens[j + 1].IsWord("FROM") || tokens[j + 1].Is("(")))
                names.Add(tokens[i].Text);
        }
        return names;
    }

    private enum Kind { Word, QuotedName, String, Number, Symbol }

    private sealed record Token(Kind Kind, string Text, int End)
    {
        public bool Is(string symbol) => Kind == Kind.Symbol && Text == symbol;
        public bool IsWord(string word) => Kind == Kind.Word && string.Equals(Text, word, StringComparison.OrdinalIgnoreCase);
    }

    private static List<Token> Tokenize(string sql)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c == '-' && At(sql, i + 1) == '-')
            {
                while (i < sql.Length && sql[i] != '\n') i++;
                continue;
            }
            if (c == '/' && At(sql, i + 1) == '*')
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                if (end < 0) throw new FormatException("unterminated /* comment");
                i = end + 2;
                continue;
            }
            if (c == '\'' || c == '"')
            {
                i++;
                var text = new System.Text.StringBuilder();
                while (true)
                {
                    if (i >= sql.Length) throw new FormatException(c == '\'' ? "unterminated string literal" : "unterminated quoted name");
                    if (sql[i] == c)
                    {
                        if (At(sql, i + 1) == c) { text.Append(c); i += 2; continue; }
                        i++;
                        break;
                    }
                    text.Append(sql[i++]);
                }
                tokens.Add(new Token(c == '\'' ? Kind.String : Kind.QuotedName, text.ToString(), i));
                continue;
            }
            if (c == '$') throw new FormatException("'$' (dollar-quoted strings, parameters) is not allowed");
            if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] == '_')) i++;
                tokens.Add(new Token(Kind.Word, sql[start..i], i));
                continue;
            }
            if (char.IsDigit(c))
            {
                var start = i;
                while (i < sql.Length && (char.IsLetterOrDigit(sql[i]) || sql[i] == '.' || sql[i] == '_')) i++;
                tokens.Add(new Token(Kind.Number, sql[start..i], i));
                continue;
            }
            tokens.Add(new Token(Kind.Symbol, c.ToString(), ++i));
        }
        return tokens;
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';
}
