using System.Text;
using Keystone.Events;
using Keystone.Ingest;
using Keystone.UnitTests.Support;

namespace Keystone.UnitTests.Ingest;

public class RejectedEventsTests
{
    [Fact]
    public void Picks_refused_events_out_of_an_array_by_index_as_they_arrived()
    {
        var body = Encoding.UTF8.GetBytes("""[ {"a":1}, {"b": [2, 3]} ,"nope", {"c":4} ]""");
        var raw = RejectedEvents.Extract(body, BodyFormat.Auto, [1, 2]);
        Assert.Equal("""{"b": [2, 3]}""", raw[1]);
        Assert.Equal("\"nope\"", raw[2]);
        Assert.Equal(2, raw.Count);
    }

    [Fact]
    public void Ndjson_counts_only_non_empty_lines_as_the_parser_does()
    {
        var body = Encoding.UTF8.GetBytes("{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}\n");
        Assert.Equal("{\"b\":2}", RejectedEvents.Extract(body, BodyFormat.Auto, [1])[1]);
        Assert.Equal("{\"c\":3}", RejectedEvents.Extract(body, BodyFormat.Ndjson, [2])[2]);
    }

    [Fact]
    public void A_single_object_is_index_zero_and_binary_batches_are_serialised_from_the_decoded_events()
    {
        Assert.Equal("{\"a\":1}", RejectedEvents.Extract(Encoding.UTF8.GetBytes("{\"a\":1}"), BodyFormat.Auto, [0])[0]);
        var e = Sample.PlayStarted();
        var raw = RejectedEvents.Extract([], BodyFormat.Binary, [0], [e]);
        Assert.Equal(e.EventId, EventJson.Parse(raw[0]).EventId);
    }
}
