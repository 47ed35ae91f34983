using Keystone.IntegrationTests.Deployment;
using Keystone.LocalInfra;

namespace Keystone.IntegrationTests.Storage;

/// <summary>
/// The emulator's cheaper removals and updates (infra/azurite-lokijs-fix.mjs): Node's own test runner on the LokiJS
/// that Azurite ships, installed as the emulator installs it. It checks that removing nothing or one document, or
/// updating a few, re-sorts no index, and that the indices stay exact under 20,000 random inserts, updates (of documents
/// changed in place, as Azurite does) and removals.
/// </summary>
public sealed class EmulatorMetadataRemovalTests
{
    [Fact]
    public async Task Removing_one_record_or_updating_a_few_re_sorts_no_index_and_the_indices_stay_exact()
    {
        var infra = InfraLocator.FindInfraDirectory();
        await NpmInstaller.EnsureInstalledAsync(infra, CancellationToken.None);
        var (code, output) = await NodeTool.NodeAsync(infra, "--test", "azurite-lokijs-fix.test.mjs");
        Assert.True(code == 0, $"node --test azurite-lokijs-fix.test.mjs exited {code}:\n{output}");
        Assert.Contains("# pass 2", output);
    }
}
