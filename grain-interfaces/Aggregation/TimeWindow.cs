namespace Keystone.Aggregation;

/// <summary>A window <c>[Start, End)</c> in event time.</summary>
[GenerateSerializer, Immutable]
public readonly record struct TimeWindow([property: Id(0)] DateTimeOffset Start, [property: Id(1)] DateTimeOffset End)
{
    public bool Contains(DateTimeOffset t) => t >= Start && t < End;
    public override string ToString() => $"[{Start:O}, {End:O})";
}
