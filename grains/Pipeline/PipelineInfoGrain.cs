using Keystone.Topics;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Keystone.Pipeline;

/// <summary>Names the stream provider in use; registered by the host.</summary>
public sealed record PipelineDescription(string StreamProvider);

[StatelessWorker]
public sealed class PipelineInfoGrain(
    IOptions<IngestOptions> ingest,
    RoutingRulesProvider rules,
    SchemaRegistryProvider schemas,
    PipelineDescription description) : Grain, IPipelineInfoGrain
{
    public Task<PipelineInfo> GetInfo()
    {
        var ruleSet = rules.Current.Rules;
        return Task.FromResult(new PipelineInfo(
            ingest.Value.Partitions,
            description.StreamProvider,
            ruleSet.Hash,
            ruleSet.Origin,
            ruleSet.Rules.Count,
            schemas.Current.EventTypes.ToArray()));
    }

    public Task<string> GetRulesText() => Task.FromResult(rules.Current.Rules.SourceText);

    public Task<IReadOnlyList<Schemas.SchemaDescription>> GetSchemas() =>
        Task.FromResult<IReadOnlyList<Schemas.SchemaDescription>>(schemas.Current.All.Select(Schemas.SchemaDescription.From).ToArray());
}
