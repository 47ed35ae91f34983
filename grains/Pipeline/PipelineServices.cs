using Keystone.Routing;
using Keystone.Schemas;

namespace Keystone.Pipeline;

/// <summary>The schema registry in force. Swapped atomically when schemas change; readers take a snapshot per batch.</summary>
public sealed class SchemaRegistryProvider(SchemaRegistry initial)
{
    private volatile SchemaRegistry _current = initial;

    public SchemaRegistry Current => _current;

    public void Replace(SchemaRegistry registry) => _current = registry;
}

/// <summary>The routing rules in force on this silo, swapped atomically; routers read it once per batch.</summary>
public sealed class RoutingRulesProvider(RoutingEngine initial)
{
    private volatile RoutingEngine _current = initial;

    public RoutingEngine Current => _current;

    public event Action<RoutingEngine>? Changed;

    public void Replace(RoutingEngine engine)
    {
        _current = engine;
        Changed?.Invoke(engine);
    }
}
