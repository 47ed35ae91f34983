namespace Keystone.Silo.Gateway;

/// <summary>RFC 7807 problem responses; <c>detail</c> (also as <c>error</c>) says exactly what was wrong.</summary>
internal static class Problems
{
    public static IResult BadRequest(string detail, IDictionary<string, object?>? extra = null) => Make(StatusCodes.Status400BadRequest, "Bad request", detail, extra);
    public static IResult NotFound(string detail) => Make(StatusCodes.Status404NotFound, "Not found", detail);
    public static IResult TooLarge(string detail) => Make(StatusCodes.Status413PayloadTooLarge, "Payload too large", detail);
    public static IResult UnsupportedMediaType(string detail) => Make(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", detail);

    private static IResult Make(int status, string title, string detail, IDictionary<string, object?>? extra = null)
    {
        var extensions = new Dictionary<string, object?> { ["error"] = detail };
        if (extra is not null)
            foreach (var (k, v) in extra) extensions[k] = v;
        return Results.Problem(detail: detail, statusCode: status, title: title, extensions: extensions);
    }

    /// <summary>Reads an integer query parameter within bounds; null when absent.</summary>
    public static bool TryInt(HttpRequest request, string name, int min, int max, int fallback, out int value, out IResult? problem)
    {
        value = fallback;
        problem = null;
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) return true;
        if (raw.Count > 1 || !int.TryParse(raw[0], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            problem = BadRequest($"query parameter '{name}' must be an integer from {min} to {max}, got '{raw}'");
            return false;
        }
        return true;
    }
}

/// <summary>Asks every partition's operator of one kind, in partition order.</summary>
internal static class PerPartition
{
    public static async Task<TStats[]> Ask<TStats>(IClusterClient cluster, Func<string, Task<TStats>> ask)
    {
        var info = await cluster.GetGrain<Keystone.Topics.IPipelineInfoGrain>(0).GetInfo();
        return await Task.WhenAll(Enumerable.Range(0, info.Partitions).Select(p => ask(Keystone.Topics.StreamNames.PartitionKey(p))));
    }
}
