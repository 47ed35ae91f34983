using Keystone.Schemas;
using Keystone.Topics;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Keystone.Routing;

/// <summary>A rule set that cannot be used. The message gives the line and column, the rule and the field.</summary>
public sealed class RoutingRulesException(string message, int line = 0, int column = 0, string? rule = null, string? field = null)
    : Exception(message)
{
    public int Line { get; } = line;
    public int Column { get; } = column;
    public string? Rule { get; } = rule;
    public string? Field { get; } = field;
}

/// <summary>What transforms need from their surroundings.</summary>
public sealed record TransformSettings(IReadOnlyList<string> PiiFields, MaskMode MaskMode, string Salt, SchemaRegistry Schemas)
{
    public static TransformSettings Default(SchemaRegistry? schemas = null) =>
        new(["email", "ip_address", "card_last4", "billing_address", "phone"], MaskMode.Hash, "", schemas ?? SchemaRegistry.Embedded);
}

/// <summary>
/// Reads the routing DSL (docs/architecture.md, Events, schemas and routing). YAML or JSON; the brief's example loads as written. Everything is checked
/// before anything is used: an unknown key, a bad glob, an empty destination list or a duplicate name is an error
/// that names the line, the rule and the field.
/// </summary>
public static class RuleSetParser
{
    public const int MaxTextBytes = 256 * 1024;
    public const int MaxRules = 500;
    public const int MaxDestinationsPerRule = 32;
    private const int MaxNodes = 50_000;

    private static readonly HashSet<string> RuleKeys = ["name", "description", "enabled", "condition", "destinations"];
    private static readonly HashSet<string> DestinationKeys = ["topic", "priority", "transform", "transforms"];

    public static RuleSet Parse(string text, string origin, TransformSettings settings)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new RoutingRulesException($"{origin}: the rule set is empty; expected a top-level 'routing-rules:' list.");
        if (text.Length > MaxTextBytes)
            throw new RoutingRulesException($"{origin}: the rule set is {text.Length} characters long; at most {MaxTextBytes} are allowed.");

        // The YAML loader recurses per nesting level: a hostile [[[[...]]]] must be refused before it gets there.
        if (FlowDepth(text) > MaxDepth)
            throw new RoutingRulesException($"{origin}: the rule set is nested more than {MaxDepth} levels deep.");

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new RoutingRulesException($"{origin} line {e.Start.Line}, column {e.Start.Column}: not valid YAML: {Inner(e)}", (int)e.Start.Line, (int)e.Start.Column);
        }
        catch (Exception e) when (e is InvalidOperationException or InsufficientExecutionStackException or ArgumentException)
        {
            throw new RoutingRulesException($"{origin}: not valid YAML: {e.Message}");
        }

        if (stream.Documents.Count != 1)
            throw new RoutingRulesException($"{origin}: expected exactly one YAML document, found {stream.Documents.Count}.");
        try
        {
            var nodes = 0;
            foreach (var _ in stream.Documents[0].AllNodes)
                if (++nodes > MaxNodes)
                    throw new RoutingRulesException($"{origin}: the rule set has more than {MaxNodes} YAML nodes (aliases expanded).");

            var p = new Parser(origin, settings);
            return new RuleSet(p.ReadRoot(stream.Documents[0].RootNode), text, origin);
        }
        catch (Exception e) when (e is InvalidOperationException or InsufficientExecutionStackException or YamlException)
        {
            // A self-referencing alias (a: &a [*a]) and the like.
            throw new RoutingRulesException($"{origin}: the rule set cannot be read: {e.Message}");
        }
    }

    private const int MaxDepth = 64;

    /// <summary>The deepest nesting of [ ] and { } outside quoted strings (YAML flow style and JSON).</summary>
    internal static int FlowDepth(string text)
    {
        int depth = 0, max = 0;
        var quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == '\\' && quote == '"') i++;
                else if (c == quote) quote = '\0';
                continue;
            }
            switch (c)
            {
                case '"' or '\'': quote = c; break;
                case '[' or '{': max = Math.Max(max, ++depth); break;
                case ']' or '}': depth = Math.Max(0, depth - 1); break;
            }
        }
        return max;
    }

    private static string Inner(YamlException e) => e.InnerException is YamlException inner ? inner.Message : e.Message;

    private sealed class Parser(string origin, TransformSettings settings)
    {
        private RoutingRulesException Error(YamlNode node, string message, string? rule = null, string? field = null)
        {
            var where = $"{origin} line {node.Start.Line}, column {node.Start.Column}";
            var what = rule is null ? "" : $"rule '{rule}': ";
            return new RoutingRulesException($"{where}: {what}{message}", (int)node.Start.Line, (int)node.Start.Column, rule, field);
        }

        public List<RoutingRule> ReadRoot(YamlNode root)
        {
            if (root is not YamlMappingNode map)
                throw Error(root, "expected a mapping with a 'routing-rules:' list at the top level.");
            YamlNode? list = null;
            foreach (var (k, v) in map.Children)
            {
                var key = Scalar(k, "a key");
                if (key == "routing-rules") list = v;
                else throw Error(k, $"unknown top-level key '{key}' (expected 'routing-rules').");
            }
            if (list is null)
                throw Error(root, "missing the top-level 'routing-rules:' list.");
            if (list is not YamlSequenceNode seq)
                throw Error(list, "'routing-rules' must be a list of rules.");
            if (seq.Children.Count == 0)
                throw Error(list, "'routing-rules' is empty; at least one rule is required.");
            if (seq.Children.Count > MaxRules)
                throw Error(list, $"{seq.Children.Count} rules; at most {MaxRules} are allowed.");

            var rules = new List<RoutingRule>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var node in seq.Children)
            {
                var rule = ReadRule(node, rules.Count);
                if (!names.Add(rule.Name))
                    throw Error(node, $"duplicate rule name '{rule.Name}'.", rule.Name, "name");
                rules.Add(rule);
            }
            return rules;
        }

        private RoutingRule ReadRule(YamlNode node, int index)
        {
            if (node is not YamlMappingNode map)
                throw Error(node, $"rule #{index + 1} must be a mapping with name, condition and destinations.");

            var name = map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode { Value: "name" }).Value;
            if (name is null)
                throw Error(node, $"rule #{index + 1} has no 'name'.", field: "name");
            var ruleName = Scalar(name, "the rule name");
            if (ruleName.Length is 0 or > 128 || ruleName.Any(c => char.IsControl(c)))
                throw Error(name, $"rule #{index + 1}: the name must be 1 to 128 printable characters.", field: "name");

            RuleCondition? condition = null;
            List<RouteDestination>? destinations = null;
            var enabled = true;
            string? description = null;
            foreach (var (k, v) in map.Children)
            {
                var key = Scalar(k, "a key");
                switch (key)
                {
                    case "name": break;
                    case "description": description = Scalar(v, "the description", ruleName); break;
                    case "enabled": enabled = Bool(v, ruleName, "enabled"); break;
                    case "condition": condition = ReadCondition(v, ruleName, "condition", allowPayload: true); break;
                    case "destinations": destinations = ReadDestinations(v, ruleName); break;
                    default:
                        throw Error(k, $"unknown key '{key}' (allowed: {string.Join(", ", RuleKeys)}).", ruleName, key);
                }
            }
            if (condition is null)
                throw Error(node, "has no 'condition' (use \"*\" to match every event).", ruleName, "condition");
            if (destinations is null)
                throw Error(node, "has no 'destinations'.", ruleName, "destinations");
            return new RoutingRule(ruleName, condition, destinations, enabled, description);
        }

        private RuleCondition ReadCondition(YamlNode node, string rule, string field, bool allowPayload)
        {
            if (node is YamlScalarNode s)
            {
                if (s.Value == "*") return RuleCondition.MatchAll;
                throw Error(node, $"'{field}' must be \"*\" or a mapping such as {{ event-type: \"video.play.*\" }}, not '{s.Value}'.", rule, field);
            }
            if (node is not YamlMappingNode map)
                throw Error(node, $"'{field}' must be \"*\" or a mapping of attribute: glob.", rule, field);
            if (map.Children.Count == 0)
                throw Error(node, $"'{field}' is empty; use \"*\" to match every event.", rule, field);

            var tests = new List<AttributeTest>();
            foreach (var (k, v) in map.Children)
            {
                var raw = Scalar(k, "an attribute");
                var attribute = raw.Replace('_', '-');
                if (raw.StartsWith("payload.", StringComparison.Ordinal) || raw.StartsWith("metadata.", StringComparison.Ordinal))
                {
                    attribute = raw;
                    if (!allowPayload || raw.EndsWith('.'))
                        throw Error(k, $"'{raw}' is not a valid attribute here.", rule, field);
                }
                else if (!EventAttributes.All.Contains(attribute))
                {
                    throw Error(k, $"unknown attribute '{raw}' in '{field}' (allowed: {string.Join(", ", EventAttributes.All)}, payload.<field>, metadata.<key>).", rule, $"{field}.{raw}");
                }
                if (tests.Any(t => t.Attribute == attribute))
                    throw Error(k, $"attribute '{raw}' appears twice in '{field}'.", rule, $"{field}.{raw}");
                tests.Add(new AttributeTest(attribute, Globs(v, rule, $"{field}.{raw}")));
            }
            return new RuleCondition(tests);
        }

        private List<Glob> Globs(YamlNode node, string rule, string field)
        {
            var patterns = node switch
            {
                YamlScalarNode s => [s.Value ?? ""],
                YamlSequenceNode seq when seq.Children.Count > 0 => seq.Children.Select(c => Scalar(c, "a glob", rule)).ToList(),
                YamlSequenceNode => throw Error(node, $"'{field}' is an empty list.", rule, field),
                _ => throw Error(node, $"'{field}' must be a glob or a list of globs.", rule, field),
            };
            var globs = new List<Glob>();
            foreach (var pattern in patterns)
            {
                var problem = Glob.Check(pattern);
                if (problem is not null) throw Error(node, $"'{field}': {problem}.", rule, field);
                globs.Add(new Glob(pattern));
            }
            return globs;
        }

        private List<RouteDestination> ReadDestinations(YamlNode node, string rule)
        {
            if (node is not YamlSequenceNode seq)
                throw Error(node, "'destinations' must be a list.", rule, "destinations");
            if (seq.Children.Count == 0)
                throw Error(node, "'destinations' is empty; a rule must send its matches somewhere.", rule, "destinations");
            if (seq.Children.Count > MaxDestinationsPerRule)
                throw Error(node, $"{seq.Children.Count} destinations; at most {MaxDestinationsPerRule} are allowed.", rule, "destinations");

            var result = new List<RouteDestination>();
            for (var i = 0; i < seq.Children.Count; i++)
            {
                var d = seq.Children[i];
                var field = $"destinations[{i}]";
                if (d is not YamlMappingNode map)
                    throw Error(d, $"{field} must be a mapping with at least a 'topic'.", rule, field);
                string? topic = null;
                var priority = Priority.Normal;
                IReadOnlyList<IEventTransform> transforms = [];
                foreach (var (k, v) in map.Children)
                {
                    var key = Scalar(k, "a key");
                    switch (key)
                    {
                        case "topic":
                            topic = Scalar(v, "the topic", rule);
                            CheckTopic(v, topic, rule, $"{field}.topic");
                            break;
                        case "priority":
                            var text = Scalar(v, "the priority", rule);
                            priority = text.ToUpperInvariant() switch
                            {
                                "HIGH" => Priority.High,
                                "NORMAL" => Priority.Normal,
                                "LOW" => Priority.Low,
                                _ => throw Error(v, $"{field}.priority: unknown priority '{text}' (use HIGH, NORMAL or LOW).", rule, $"{field}.priority"),
                            };
                            break;
                        case "transform" or "transforms":
                            transforms = ReadTransforms(v, rule, $"{field}.{key}");
                            break;
                        default:
                            throw Error(k, $"{field}: unknown key '{key}' (allowed: topic, priority, transform).", rule, $"{field}.{key}");
                    }
                }
                if (topic is null)
                    throw Error(d, $"{field} has no 'topic'.", rule, $"{field}.topic");
                if (result.Any(r => r.Topic == topic))
                    throw Error(d, $"{field}: topic '{topic}' is listed twice in this rule.", rule, $"{field}.topic");
                result.Add(new RouteDestination(topic, priority, transforms));
            }
            return result;
        }

        private void CheckTopic(YamlNode node, string topic, string rule, string field)
        {
            // Check the shape with every placeholder replaced by a representative value.
            var probe = topic;
            var start = probe.IndexOf('{');
            while (start >= 0)
            {
                var end = probe.IndexOf('}', start);
                if (end < 0)
                    throw Error(node, $"{field}: unclosed '{{' in topic '{topic}'.", rule, field);
                var name = probe[(start + 1)..end];
                if (!RouteDestination.Placeholders.Contains(name))
                    throw Error(node, $"{field}: unknown placeholder '{{{name}}}' (allowed: {string.Join(", ", RouteDestination.Placeholders.Select(p => "{" + p + "}"))}).", rule, field);
                probe = probe[..start] + "x" + probe[(end + 1)..];
                start = probe.IndexOf('{');
            }
            if (probe.Contains('}'))
                throw Error(node, $"{field}: unmatched '}}' in topic '{topic}'.", rule, field);
            if (!StreamNames.IsValidTopicName(probe) || (probe.StartsWith("keystone-", StringComparison.Ordinal) && topic != StreamNames.Unrouted))
                throw Error(node, $"{field}: '{topic}' is not a valid topic name (3-63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit; 'keystone-' is reserved).", rule, field);
        }

        private List<IEventTransform> ReadTransforms(YamlNode node, string rule, string field)
        {
            var items = node switch
            {
                YamlSequenceNode seq => seq.Children.ToList(),
                YamlScalarNode or YamlMappingNode => [node],
                _ => throw Error(node, $"'{field}' must be a list of transforms.", rule, field),
            };
            var result = new List<IEventTransform>();
            foreach (var item in items)
            {
                string name;
                YamlNode? args = null;
                if (item is YamlScalarNode s) name = s.Value ?? "";
                else if (item is YamlMappingNode m && m.Children.Count == 1)
                {
                    var only = m.Children.Single();
                    name = Scalar(only.Key, "a transform name", rule);
                    args = only.Value;
                }
                else throw Error(item, $"{field}: a transform is a name (mask-pii-fields) or a one-key mapping (project: [a, b]).", rule, field);
                result.Add(ReadTransform(item, name, args, rule, field));
            }
            return result;
        }

        private IEventTransform ReadTransform(YamlNode at, string name, YamlNode? args, string rule, string field)
        {
            switch (name)
            {
                case MaskPiiTransform.TransformName:
                    IEnumerable<string>? fields = null;
                    var mode = settings.MaskMode;
                    if (args is YamlMappingNode m)
                    {
                        foreach (var (k, v) in m.Children)
                        {
                            var key = Scalar(k, "a key", rule);
                            if (key == "fields") fields = Names(v, rule, $"{field}.{name}.fields");
                            else if (key == "mode")
                            {
                                var text = Scalar(v, "the mode", rule);
                                mode = text switch
                                {
                                    "hash" => MaskMode.Hash,
                                    "mask" => MaskMode.Mask,
                                    _ => throw Error(v, $"{field}.{name}.mode: unknown mode '{text}' (use hash or mask).", rule, $"{field}.{name}.mode"),
                                };
                            }
                            else throw Error(k, $"{field}.{name}: unknown option '{key}' (allowed: fields, mode).", rule, $"{field}.{name}.{key}");
                        }
                    }
                    else if (args is YamlSequenceNode) fields = Names(args, rule, $"{field}.{name}");
                    else if (args is not null && !(args is YamlScalarNode { Value: "" or null }))
                        throw Error(args, $"{field}.{name}: expected a field list or {{ fields: [...], mode: hash|mask }}.", rule, $"{field}.{name}");
                    return new MaskPiiTransform(fields, settings.PiiFields, mode, settings.Salt, settings.Schemas);

                case EnrichTransform.TransformName:
                    var extra = new Dictionary<string, string>(StringComparer.Ordinal);
                    if (args is YamlMappingNode em)
                    {
                        foreach (var (k, v) in em.Children)
                            extra[Scalar(k, "a metadata key", rule)] = Scalar(v, "a metadata value", rule);
                    }
                    else if (args is not null && !(args is YamlScalarNode { Value: "" or null }))
                        throw Error(args, $"{field}.{name}: expected a mapping of metadata entries to add.", rule, $"{field}.{name}");
                    return new EnrichTransform(extra);

                case ProjectTransform.TransformName:
                    return new ProjectTransform(args is null ? throw Error(at, $"{field}.project needs a list of payload fields to keep.", rule, $"{field}.project") : Names(args, rule, $"{field}.project"));

                case DropFieldsTransform.TransformName:
                    return new DropFieldsTransform(args is null ? throw Error(at, $"{field}.drop needs a list of payload fields to remove.", rule, $"{field}.drop") : Names(args, rule, $"{field}.drop"));

                case FilterTransform.TransformName:
                    if (args is not YamlMappingNode)
                        throw Error(at, $"{field}.filter needs a mapping of attribute: glob, e.g. {{ payload.quality: \"4K\" }}.", rule, $"{field}.filter");
                    return new FilterTransform(ReadCondition(args, rule, $"{field}.filter", allowPayload: true));

                default:
                    throw Error(at, $"{field}: unknown transform '{name}' (known: {MaskPiiTransform.TransformName}, {EnrichTransform.TransformName}, {ProjectTransform.TransformName}, {DropFieldsTransform.TransformName}, {FilterTransform.TransformName}).", rule, field);
            }
        }

        private List<string> Names(YamlNode node, string rule, string field)
        {
            if (node is not YamlSequenceNode seq || seq.Children.Count == 0)
                throw Error(node, $"'{field}' must be a non-empty list of field names.", rule, field);
            return seq.Children.Select(c => Scalar(c, "a field name", rule)).ToList();
        }

        private bool Bool(YamlNode node, string rule, string field)
        {
            var text = Scalar(node, field, rule);
            return text switch
            {
                "true" or "True" or "yes" => true,
                "false" or "False" or "no" => false,
                _ => throw Error(node, $"'{field}' must be true or false, not '{text}'.", rule, field),
            };
        }

        private string Scalar(YamlNode node, string what, string? rule = null)
        {
            if (node is YamlScalarNode s && s.Value is not null) return s.Value;
            throw Error(node, $"expected {what} (a plain value), got a {(node is YamlSequenceNode ? "list" : node is YamlMappingNode ? "mapping" : "null")}.", rule);
        }
    }
}
