using System.Runtime.InteropServices;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// Stops a process and every process below it (SIGSTOP) until disposed (SIGCONT): a storage emulator that accepts
/// connections and answers nothing, as Azurite has been seen to do for 11–12 s on a loaded machine. Linux only.
/// </summary>
public sealed class ProcessPause : IDisposable
{
    private const int SigCont = 18;
    private const int SigStop = 19;
    private readonly List<int> _stopped = [];

    public ProcessPause(int root)
    {
        foreach (var pid in Keystone.LocalInfra.ProcessTree.Of(root))
            if (Kill(pid, SigStop) == 0) _stopped.Add(pid);
        if (_stopped.Count == 0) throw new InvalidOperationException($"could not stop process {root} or any below it");
    }

    public void Dispose()
    {
        foreach (var pid in _stopped) Kill(pid, SigCont);
        _stopped.Clear();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
