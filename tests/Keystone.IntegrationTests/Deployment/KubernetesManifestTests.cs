using YamlDotNet.RepresentationModel;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// The manifests in infra/kubernetes against the Kubernetes API schemas (kubernetes-models, unknown fields refused),
/// and the properties the deployment relies on, read from the YAML itself.
/// </summary>
public class KubernetesManifestTests
{
    private static readonly string Folder = NodeTool.Repo("infra/kubernetes");
    private static readonly string Validator = NodeTool.Repo("infra/kubernetes/validate");

    [Fact]
    public async Task Every_manifest_is_valid_against_the_Kubernetes_schemas()
    {
        await NodeTool.EnsureInstalledAsync(Validator, "kubernetes-models");
        var (code, output) = await NodeTool.NodeAsync(Validator, "validate.mjs", Folder);
        Assert.True(code == 0, output);
        Assert.Matches(@"\d+ documents in \d+ files: valid", output);
    }

    [Fact]
    public async Task The_validator_refuses_unknown_fields_wrong_types_and_unknown_kinds()
    {
        await NodeTool.EnsureInstalledAsync(Validator, "kubernetes-models");
        var (code, output) = await NodeTool.NodeAsync(Validator, "validate.mjs", Path.Combine(Validator, "fixtures", "unknown-field.yaml"));
        Assert.Equal(1, code);
        Assert.Contains("unknown-field.yaml#0 (Deployment broken): Object literal may only specify known properties", output);
        Assert.Contains("(field \"readinesProbe\")", output);

        (code, output) = await NodeTool.NodeAsync(Validator, "validate.mjs", Path.Combine(Validator, "fixtures", "wrong-type.yaml"));
        Assert.Equal(1, code);
        Assert.Contains("spec/ports/0/port must be integer", output);
        Assert.Contains("unknown kind Servise in v1", output);
    }

    private static IEnumerable<YamlMappingNode> Documents(string file)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Folder, file));
        stream.Load(reader);
        return stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>();
    }

    private static YamlNode At(YamlNode node, params string[] path)
    {
        foreach (var p in path)
            node = node is YamlSequenceNode seq ? seq[int.Parse(p)] : ((YamlMappingNode)node)[p];
        return node;
    }

    private static string S(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode Of(string file, string kind) => Documents(file).Single(d => S(d, "kind") == kind);

    [Theory]
    [InlineData("silo.yaml")]
    [InlineData("gateway.yaml")]
    public void Deployments_read_connection_strings_and_keys_from_secrets_and_probe_the_health_endpoints(string file)
    {
        var deployment = Of(file, "Deployment");
        var container = At(deployment, "spec", "template", "spec", "containers", "0");
        var env = ((YamlSequenceNode)At(container, "env")).Cast<YamlMappingNode>().ToList();
        foreach (var e in env)
        {
            var name = S(e, "name");
            var sensitive = name.EndsWith("ConnectionString", StringComparison.Ordinal) || name.EndsWith("__Key", StringComparison.Ordinal);
            if (sensitive)
            {
                Assert.False(e.Children.ContainsKey("value"), $"{file}: {name} is inline");
                Assert.Equal("keystone-secrets", S(e, "valueFrom", "secretKeyRef", "name"));
            }
        }
        Assert.Contains(env, e => S(e, "name") == "Keystone__Security__Keys__0__Key");
        Assert.Equal("/health/ready", S(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/health/live", S(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("true", S(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot"));
        Assert.Equal("1", Documents(file).Count(d => S(d, "kind") == "PodDisruptionBudget").ToString());
        Assert.Equal("Service", Documents(file).Select(d => S(d, "kind")).Single(k => k == "Service"));
        Assert.Equal("cpu", S(Of(file, "HorizontalPodAutoscaler"), "spec", "metrics", "0", "resource", "name"));

        // No connection string or key anywhere in the applied manifests' plain values.
        foreach (var f in Directory.GetFiles(Folder, "*.yaml").Where(f => !f.Contains(".example.")))
        {
            var text = File.ReadAllText(f);
            Assert.DoesNotContain("AccountKey=", text);
            Assert.DoesNotContain("SharedAccessKey=", text);
        }
    }

    [Fact]
    public void Silos_run_under_Orleans_Kubernetes_hosting_with_the_rbac_it_needs_and_time_to_checkpoint()
    {
        var deployment = Of("silo.yaml", "Deployment");
        var pod = At(deployment, "spec", "template");
        Assert.Equal("keystone", S(pod, "metadata", "labels", "orleans/serviceId"));
        Assert.NotEmpty(S(pod, "metadata", "labels", "orleans/clusterId"));
        var env = ((YamlSequenceNode)At(pod, "spec", "containers", "0", "env")).Cast<YamlMappingNode>().ToDictionary(e => S(e, "name"));
        Assert.Equal("metadata.name", S(env["POD_NAME"], "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("status.podIP", S(env["POD_IP"], "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("metadata.labels['orleans/clusterId']", S(env["ORLEANS_CLUSTER_ID"], "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal("keystone-silo", S(pod, "spec", "serviceAccountName"));

        var config = Of("config.yaml", "ConfigMap");
        Assert.Equal("true", S(config, "data", "Keystone__Cluster__Kubernetes"));
        Assert.Equal("AzureTable", S(config, "data", "Keystone__Cluster__Mode"));
        // The production profile: the fronting log on the hub, owned by Keystone's checkpoints; topics in-cluster.
        Assert.Equal("EventHubs", S(config, "data", "Keystone__Checkpoints__FrontingLog"));
        Assert.Equal("Local", S(config, "data", "Keystone__Streaming__Provider"));
        Assert.Equal("eventhubs-connection-string", S(env["Keystone__Checkpoints__EventHubs__ConnectionString"], "valueFrom", "secretKeyRef", "key"));
        // The kubelet's SIGKILL must come after the host's own shutdown timeout.
        Assert.True(int.Parse(S(pod, "spec", "terminationGracePeriodSeconds")) > int.Parse(S(config, "data", "shutdownTimeoutSeconds")));

        var role = Of("rbac.yaml", "Role");
        var verbs = ((YamlSequenceNode)At(role, "rules", "0", "verbs")).Select(v => ((YamlScalarNode)v).Value).ToHashSet();
        Assert.Superset(new HashSet<string?> { "get", "list", "watch", "delete" }, verbs);
        Assert.Equal("pods", S(role, "rules", "0", "resources", "0"));
    }

    [Fact]
    public void The_configuration_the_manifests_give_passes_the_silos_own_check()
    {
        // Environment-variable names as ASP.NET Core reads them: Keystone__Cluster__Mode is Keystone:Cluster:Mode.
        var data = ((YamlMappingNode)At(Of("config.yaml", "ConfigMap"), "data")).Children
            .ToDictionary(p => ((YamlScalarNode)p.Key).Value!.Replace("__", ":"), p => ((YamlScalarNode)p.Value).Value);
        foreach (var file in new[] { "silo.yaml", "gateway.yaml" })
        {
            var values = new Dictionary<string, string?>(data);
            var env = ((YamlSequenceNode)At(Of(file, "Deployment"), "spec", "template", "spec", "containers", "0", "env")).Cast<YamlMappingNode>();
            foreach (var e in env)
                values[S(e, "name").Replace("__", ":")] = e.Children.ContainsKey("value") ? S(e, "value") : "from-a-secret-" + S(e, "name");
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
            Keystone.Silo.Hosting.ConfigurationCheck.Validate(configuration);
            var security = Keystone.Silo.Hosting.SiloSetup.Bind<Keystone.Silo.Hosting.SecurityOptions>(configuration, Keystone.Silo.Hosting.SecurityOptions.Section);
            Assert.Empty(security.Problems(development: false));
            Assert.Equal(2, security.Keys.Count);
        }
    }
}
