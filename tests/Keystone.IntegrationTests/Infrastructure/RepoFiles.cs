namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>Files of the repository the tests run from (found by walking up to Orleans.Keystone.sln).</summary>
public static class RepoFiles
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Orleans.Keystone.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException("repository root (Orleans.Keystone.sln) not found above the test binaries");
        }
    }

    public static string PathOf(string relative) => Path.Combine(Root, relative);
}
