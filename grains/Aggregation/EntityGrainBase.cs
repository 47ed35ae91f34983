using Keystone.Graph;

namespace Keystone.Aggregation;

/// <summary>
/// The skeleton the User, Video and Profile grains share: an activation id (a changed one tells the operator the
/// grain lost what it had not written) and the graph side of the node. Each grain adds its aggregation and its
/// checkpointer.
/// </summary>
public abstract class EntityGrainBase : GraphNodeGrainBase
{
    private protected readonly Guid _activation = Guid.NewGuid();
    private protected GraphFacet _graph = null!;

    private protected override GraphFacet Graph => _graph;
}
