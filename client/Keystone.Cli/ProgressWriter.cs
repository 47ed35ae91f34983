namespace Keystone.Cli;

/// <summary>
/// A status line: rewritten in place when stdout is a terminal, one line per update when it is a file or a pipe
/// (where carriage returns would only garble the log).
/// </summary>
internal sealed class ProgressWriter(bool? inPlace = null, TextWriter? output = null)
{
    private readonly bool _inPlace = inPlace ?? !Console.IsOutputRedirected;
    private readonly TextWriter _output = output ?? Console.Out;
    private int _lastLength;

    public void Write(string line)
    {
        if (!_inPlace)
        {
            _output.WriteLine(line);
            return;
        }
        // Pad over the tail of a longer previous line.
        _output.Write('\r' + line.PadRight(_lastLength));
        _output.Flush();
        _lastLength = line.Length;
    }

    public void End()
    {
        if (_inPlace && _lastLength > 0) _output.WriteLine();
        _lastLength = 0;
    }
}
