using System.Net.Sockets;
using Keystone.Cli;
using Keystone.Cli.Commands;
using Keystone.Topics;
using Microsoft.Extensions.Logging;
using Orleans.Runtime.Messaging;

namespace Keystone.UnitTests.Cli;

public class CliHelpersTests
{
    [Fact]
    public void Reason_prefers_the_socket_error()
    {
        var e = new ConnectionFailedException("Unable to connect to any gateway", new SocketException((int)SocketError.ConnectionRefused));
        Assert.Equal(new SocketException((int)SocketError.ConnectionRefused).Message, ExceptionText.Reason(e));
    }

    [Fact]
    public void Reason_turns_orleans_socket_errors_into_words()
    {
        var e = new ConnectionFailedException("Unable to connect to any of the 1 available gateways.",
            new InvalidOperationException("Unable to connect to 127.0.0.1:30000. Error: ConnectionRefused"));
        Assert.Equal("connection refused", ExceptionText.Reason(e));
    }

    [Fact]
    public void Reason_drops_the_clients_reconnect_schedule() =>
        Assert.Equal("Unable to connect to S127.0.0.1:30100:0",
            ExceptionText.Reason(new ConnectionFailedException("Unable to connect to S127.0.0.1:30100:0, will retry after 997.8355ms")));

    [Fact]
    public void Logging_is_silent_while_connecting_then_warnings_and_framework_errors()
    {
        var gate = new ClusterConnection.LogGate(verbose: false);
        Assert.False(gate.Allows(null, "Orleans.Messaging.GatewayManager", LogLevel.Critical));
        Assert.False(gate.Allows(null, "Keystone.Client.Publishing.KeystonePublisher", LogLevel.Error));

        gate.Connected();
        Assert.True(gate.Allows(null, "Keystone.Client.Publishing.KeystonePublisher", LogLevel.Warning));
        Assert.False(gate.Allows(null, "Keystone.Client.Publishing.KeystonePublisher", LogLevel.Information));
        Assert.False(gate.Allows(null, "Orleans.Messaging.GatewayManager", LogLevel.Warning));
        Assert.True(gate.Allows(null, "Orleans.Messaging.GatewayManager", LogLevel.Error));
        Assert.False(gate.Allows(null, "Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Warning));
    }

    [Fact]
    public void Verbose_logging_shows_everything_from_the_start()
    {
        var gate = new ClusterConnection.LogGate(verbose: true);
        Assert.True(gate.Allows(null, "Orleans.Messaging.GatewayManager", LogLevel.Debug));
        Assert.False(gate.Allows(null, "Orleans.Messaging.GatewayManager", LogLevel.Trace));
    }

    [Fact]
    public void Reason_is_the_innermost_first_line()
    {
        var e = new InvalidOperationException("outer", new ArgumentException("inner problem.\n   at Some.Stack()"));
        Assert.Equal("inner problem", ExceptionText.Reason(e));
        Assert.Equal("no answer in time", ExceptionText.Reason(new TimeoutException("Response did not arrive on time in 00:00:30")));
    }

    [Fact]
    public void Progress_is_rewritten_in_place_on_a_terminal()
    {
        var output = new StringWriter();
        var progress = new ProgressWriter(inPlace: true, output);
        progress.Write("longer line");
        progress.Write("short");
        progress.End();
        Assert.Equal("\rlonger line\rshort      " + Environment.NewLine, output.ToString());
    }

    [Fact]
    public void Progress_is_one_line_per_update_in_a_file()
    {
        var output = new StringWriter { NewLine = "\n" };
        var progress = new ProgressWriter(inPlace: false, output);
        progress.Write("a");
        progress.Write("b");
        progress.End();
        Assert.Equal("a\nb\n", output.ToString());
    }

    [Fact]
    public void Compact_log_lines_are_one_line_with_the_reason()
    {
        var line = CompactLogFormatter.Line(LogLevel.Warning, "Keystone.Client.Publishing.KeystonePublisher", "Sending failed\nmore", new TimeoutException());
        Assert.Equal("keystone: warn: KeystonePublisher: Sending failed (no answer in time)", line);
    }

    [Fact]
    public void Unknown_topic_lists_the_known_ones_sorted()
    {
        Assert.Equal("unknown topic 'x-y'. Known topics: a-topic, b-topic", TailCommand.UnknownTopic("x-y", ["b-topic", "a-topic"]));
        Assert.Contains("knows no topics", TailCommand.UnknownTopic("x-y", []));
    }

    [Fact]
    public void Topics_table_is_sorted_with_numbers_right_aligned()
    {
        var now = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
        var text = TopicsCommand.Render(
        [
            new TopicSummary("b-topic", 1_234, 0, now.AddSeconds(-5), Lag(400_000, 3_000), "HIGH", Lag(3_000)),
            new TopicSummary("a-topic", 0, 0, null, LatencySnapshot.Empty, null),
        ], now);
        Assert.Equal(
            "TOPIC    PRIORITY  DELIVERED  LAST DELIVERY  LAG P99  LAST MINUTE\n" +
            "a-topic  -                 0  never                -            -\n" +
            "b-topic  HIGH          1,234  5s ago          400 ms       3.0 ms\n",
            text);

        static LatencySnapshot Lag(params long[] micros)
        {
            var h = new LatencyHistogram();
            foreach (var m in micros) h.Record(m);
            return h.Snapshot();
        }
    }

    [Fact]
    public void Info_lists_the_pipeline_settings()
    {
        var text = InfoCommand.Render(new PipelineInfo(8, "Memory", "abc", "routing-rules.yaml", 11, ["a.b", "c.d"]), "127.0.0.1:30000");
        Assert.Contains("Partitions       8", text);
        Assert.Contains("11 from routing-rules.yaml (hash abc)", text);
        Assert.Contains("2: a.b, c.d", text);
    }
}
