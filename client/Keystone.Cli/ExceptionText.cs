using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Keystone.Cli;

/// <summary>Turns an exception chain into the short reason a person needs ("Connection refused"), not a stack trace.</summary>
internal static partial class ExceptionText
{
    public static string Reason(Exception e)
    {
        // The socket error, when there is one, is the most telling part of a connection failure.
        for (var x = e; x is not null; x = x.InnerException)
            if (x is SocketException socket) return FirstLine(socket.Message);

        var innermost = e;
        while (innermost.InnerException is not null) innermost = innermost.InnerException;
        if (innermost is AggregateException { InnerExceptions.Count: > 0 } aggregate) innermost = aggregate.InnerExceptions[0];
        if (innermost is TimeoutException) return "no answer in time";
        var text = FirstLine(innermost.Message);
        // Orleans: "Unable to connect to 127.0.0.1:30000. Error: ConnectionRefused" -- the address is already in the message around it.
        var socketError = OrleansSocketError().Match(text);
        if (socketError.Success) return Words(socketError.Groups[1].Value);
        // The client's own reconnect schedule means nothing to someone whose command has already given up.
        text = WillRetry().Replace(text, "");
        return text.Length == 0 ? innermost.GetType().Name : text;
    }

    [GeneratedRegex(@"^Unable to connect to \S+ Error: ([A-Za-z]+)$")]
    private static partial Regex OrleansSocketError();

    [GeneratedRegex(@", will retry after [\d.]+ ?m?s$")]
    private static partial Regex WillRetry();

    // "ConnectionRefused" -> "connection refused"
    private static string Words(string pascal) => Regex.Replace(pascal, "(?<=[a-z])(?=[A-Z])", " ").ToLowerInvariant();

    internal static string FirstLine(string message)
    {
        var text = message.Trim();
        var newline = text.IndexOfAny(['\r', '\n']);
        if (newline >= 0) text = text[..newline].Trim();
        return text.TrimEnd('.');
    }
}
