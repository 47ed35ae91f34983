using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Reflection.PortableExecutable;
using System.Text.Json.Nodes;

namespace Keystone.IntegrationTests.Deployment;

/// <summary>
/// The images `dotnet publish -t:PublishContainer` writes as tarballs (OCI layouts) (infra/container/build-images.sh; .ci/run builds
/// them before the tests): their configuration, read from the archive as a container runtime would.
/// </summary>
public sealed class ContainerImageTests
{
    private static readonly string Out = NodeTool.Repo("artifacts/containers");
    private static readonly SemaphoreSlim BuildLock = new(1, 1);

    /// <summary>The tarball, built now when it is missing or older than the project that defines it.</summary>
    private static async Task<string> Image(string name)
    {
        var path = Path.Combine(Out, name + ".tar");
        await BuildLock.WaitAsync();
        try
        {
            var stale = !File.Exists(path) || File.GetLastWriteTimeUtc(path) < File.GetLastWriteTimeUtc(NodeTool.Repo("silo/Keystone.Silo.csproj"));
            if (stale)
            {
                var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                psi.ArgumentList.Add(NodeTool.Repo("infra/container/build-images.sh"));
                using var process = Process.Start(psi)!;
                var stdout = process.StandardOutput.ReadToEndAsync();
                var stderr = process.StandardError.ReadToEndAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
                await process.WaitForExitAsync(timeout.Token);
                Assert.True(process.ExitCode == 0, $"build-images.sh failed ({process.ExitCode}):\n{await stdout}\n{await stderr}");
            }
        }
        finally
        {
            BuildLock.Release();
        }
        return path;
    }

    /// <summary>Every file of the archive (the SDK writes an OCI image layout; older SDKs wrote Docker's archive layout).</summary>
    private static Dictionary<string, byte[]> Entries(string tarball)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var file = File.OpenRead(tarball);
        var gzip = file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new TarReader(stream);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.DataStream is null) continue;
            using var copy = new MemoryStream();
            entry.DataStream.CopyTo(copy);
            entries[entry.Name.TrimStart('.', '/')] = copy.ToArray();
        }
        return entries;
    }

    private static (JsonNode Config, List<string> Layers, Dictionary<string, byte[]> Entries) Read(string tarball)
    {
        var entries = Entries(tarball);
        JsonNode config;
        List<string> layers;
        if (entries.TryGetValue("manifest.json", out var dockerManifest))
        {
            var m = JsonNode.Parse(dockerManifest)!.AsArray()[0]!;
            config = JsonNode.Parse(entries[m["Config"]!.GetValue<string>()])!;
            layers = [.. m["Layers"]!.AsArray().Select(l => l!.GetValue<string>())];
        }
        else
        {
            // OCI layout: index.json -> manifest -> config.
            string Blob(string digest) => "blobs/" + digest.Replace(':', '/');
            var index = JsonNode.Parse(entries["index.json"])!;
            var manifest = JsonNode.Parse(entries[Blob(index["manifests"]![0]!["digest"]!.GetValue<string>())])!;
            config = JsonNode.Parse(entries[Blob(manifest["config"]!["digest"]!.GetValue<string>())])!;
            layers = [.. manifest["layers"]!.AsArray().Select(l => Blob(l!["digest"]!.GetValue<string>()))];
        }
        return (config, layers, entries);
    }

    /// <summary>File names in a layer (layers are tar, possibly gzip-compressed).</summary>
    private static List<string> Files(byte[] layer)
    {
        var names = new List<string>();
        using var raw = new MemoryStream(layer);
        Stream stream = layer.Length > 2 && layer[0] == 0x1f && layer[1] == 0x8b ? new GZipStream(raw, CompressionMode.Decompress) : raw;
        using var reader = new TarReader(stream);
        while (reader.GetNextEntry() is { } entry) names.Add("/" + entry.Name.TrimStart('.', '/'));
        return names;
    }

    /// <summary>The bytes of one file in a layer, or null.</summary>
    private static byte[]? FileIn(byte[] layer, string path)
    {
        using var raw = new MemoryStream(layer);
        Stream stream = layer.Length > 2 && layer[0] == 0x1f && layer[1] == 0x8b ? new GZipStream(raw, CompressionMode.Decompress) : raw;
        using var reader = new TarReader(stream);
        while (reader.GetNextEntry() is { } entry)
        {
            if ("/" + entry.Name.TrimStart('.', '/') != path || entry.DataStream is null) continue;
            using var copy = new MemoryStream();
            entry.DataStream.CopyTo(copy);
            return copy.ToArray();
        }
        return null;
    }

    /// <summary>Whether an assembly carries ReadyToRun native code (crossgen2 points the CLI header's managed native
    /// header at its READYTORUN_HEADER; an IL-only assembly has none).</summary>
    private static bool IsReadyToRun(Stream assembly)
    {
        using var pe = new PEReader(assembly);
        return pe.PEHeaders.CorHeader is { ManagedNativeHeaderDirectory.Size: > 0 };
    }

    // The silo's own code, Orleans' runtime and a storage client: what a starting silo compiles first.
    private static readonly string[] StartupAssemblies = ["Keystone.Silo.dll", "Keystone.Grains.dll", "Orleans.Runtime.dll", "Azure.Storage.Blobs.dll"];

    [Fact]
    public async Task The_images_assemblies_are_compiled_ahead_of_time()
    {
        var (_, layers, entries) = Read(await Image("keystone-silo"));
        foreach (var name in StartupAssemblies)
        {
            var bytes = layers.Select(l => FileIn(entries[l], "/app/" + name)).LastOrDefault(b => b is not null);
            Assert.True(bytes is not null, $"/app/{name} is not in the image");
            Assert.True(IsReadyToRun(new MemoryStream(bytes)), $"/app/{name} in the image has no ReadyToRun code");
        }
    }

    /// <summary>
    /// What `dotnet run` starts, as the SDK reads it from the project (RunCommand, RunArguments): in Release (the quick
    /// start) the ReadyToRun copy the project publishes for this machine before it runs; the plain build in Debug or
    /// when turned off. Evaluation only: nothing is built or published here (the image test above checks what the
    /// publish compiles, and the quick start's figures in docs/performance.md what it changes).
    /// </summary>
    [Theory]
    [InlineData("Release", null, true)]
    [InlineData("Release", "false", false)]
    [InlineData("Debug", null, false)]
    public async Task A_release_run_starts_the_copy_compiled_ahead_of_time(string configuration, string? readyToRun, bool expected)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "msbuild", NodeTool.Repo("silo/Keystone.Silo.csproj"), $"-p:Configuration={configuration}", "-getProperty:RunCommand", "-getProperty:RunArguments", "-nologo" })
            psi.ArgumentList.Add(arg);
        if (readyToRun is not null) psi.ArgumentList.Add($"-p:KeystoneReadyToRun={readyToRun}");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"dotnet msbuild failed ({process.ExitCode}):\n{output}\n{await stderr}");

        var properties = JsonNode.Parse(output)!["Properties"]!;
        var command = properties["RunCommand"]!.GetValue<string>();
        var arguments = properties["RunArguments"]!.GetValue<string>();
        var copy = Path.Combine(NodeTool.Repo("silo"), "bin", configuration, "net10.0", "ready-to-run", "Keystone.Silo.dll");
        if (expected)
        {
            Assert.Equal("dotnet", Path.GetFileNameWithoutExtension(command));
            Assert.Equal($"exec \"{copy}\"", arguments);
        }
        else
        {
            Assert.DoesNotContain("ready-to-run", command + arguments, StringComparison.Ordinal);
            Assert.Equal(Path.Combine(NodeTool.Repo("silo"), "bin", configuration, "net10.0", "Keystone.Silo"), command);
        }
    }

    private static readonly string[] Secrets = ["ConnectionString", "AccountKey", "SharedAccessKey", "__Key", "Password", "Secret"];

    [Theory]
    [InlineData("keystone-silo", "Silo", new[] { "8080/tcp", "11111/tcp", "30000/tcp" })]
    [InlineData("keystone-gateway", "Gateway", new[] { "8080/tcp" })]
    public async Task The_image_runs_the_role_as_a_non_root_user_with_its_ports_and_no_secret(string name, string role, string[] ports)
    {
        var (image, layers, entries) = Read(await Image(name));
        var config = image["config"]!;

        var command = (config["Entrypoint"]?.AsArray() ?? []).Concat(config["Cmd"]?.AsArray() ?? []).Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(["dotnet", "/app/Keystone.Silo.dll"], command);
        Assert.Equal("1654", config["User"]!.GetValue<string>());
        Assert.Equal(ports.Order(), config["ExposedPorts"]!.AsObject().Select(p => p.Key).Order());
        Assert.Equal("/app", config["WorkingDir"]!.GetValue<string>().TrimEnd('/'));

        var env = config["Env"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        Assert.Contains($"Keystone__Role={role}", env);
        Assert.Contains("ASPNETCORE_HTTP_PORTS=8080", env);
        foreach (var variable in env)
            Assert.False(Secrets.Any(s => variable.Split('=')[0].Contains(s, StringComparison.OrdinalIgnoreCase)), $"secret-like variable in the image: {variable}");

        // The application and the runtime it needs are in the layers; no local state or dead-letter file came along.
        var files = layers.SelectMany(l => Files(entries[l])).ToHashSet(StringComparer.Ordinal);
        Assert.Contains(command[1], files);                       // the entry point names a file the image has
        Assert.Contains("/usr/share/dotnet/dotnet", files);       // and `dotnet` is on the image's PATH
        Assert.Contains(config["Env"]!.AsArray(), e => e!.GetValue<string>().StartsWith("PATH=/usr/share/dotnet:", StringComparison.Ordinal));
        Assert.Contains("/app/routing-rules.yaml", files);
        Assert.Contains(files, f => f.StartsWith("/usr/share/dotnet/shared/Microsoft.AspNetCore.App/", StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => f.Contains("/.local/", StringComparison.Ordinal) || f.Contains("deadletter", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("/etc/passwd", files);
    }
}
