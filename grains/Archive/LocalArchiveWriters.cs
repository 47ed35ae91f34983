using Keystone.Pipeline;

namespace Keystone.Archive;

/// <summary>The archive writers active in this silo, flushed by a stopping silo (see <see cref="LocalGrains{TGrain}"/>).</summary>
public sealed class LocalArchiveWriters : LocalGrains<IArchiveWriterGrain>;
