namespace Keystone.Storage;

/// <summary>
/// Which storage requests have newly waited too long for their answer, and which of those are no longer waiting:
/// each stalled request is reported once, however many times it is looked at.
/// </summary>
public sealed class StorageStalls(TimeSpan after)
{
    private readonly Dictionary<long, StorageRequests.Unanswered> _reported = [];

    /// <summary>Compares the requests in flight now with what was reported before.</summary>
    /// <returns>The requests that reached <c>after</c> since the last look, and the reported ones that have since been
    /// answered (or failed).</returns>
    public (IReadOnlyList<StorageRequests.Unanswered> Stalled, IReadOnlyList<StorageRequests.Unanswered> Cleared) Look(IReadOnlyList<StorageRequests.Unanswered> inFlight)
    {
        var stalled = new List<StorageRequests.Unanswered>();
        var waiting = new HashSet<long>();
        foreach (var request in inFlight)
        {
            waiting.Add(request.Id);
            if (request.Waiting >= after && _reported.TryAdd(request.Id, request)) stalled.Add(request);
        }
        var cleared = _reported.Values.Where(r => !waiting.Contains(r.Id)).ToList();
        foreach (var r in cleared) _reported.Remove(r.Id);
        return (stalled, cleared);
    }
}
