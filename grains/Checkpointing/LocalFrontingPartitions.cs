using Keystone.Pipeline;

namespace Keystone.Checkpointing;

/// <summary>The fronting log writers active in this silo: a stopping silo has them close their open segments and write
/// them to the lake, so that a graceful stop leaves the lake complete (see <see cref="LocalGrains{TGrain}"/>).</summary>
public sealed class LocalFrontingPartitions : LocalGrains<IFrontingPartitionGrain>;
