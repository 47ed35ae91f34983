namespace Keystone.Storage;

public static class StorageNames
{
    /// <summary>The grain storage provider for all Keystone state (Azure Blob storage; one blob per grain).</summary>
    public const string State = "keystone-state";
}
