using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Keystone.IntegrationTests.Infrastructure;

/// <summary>
/// A TCP relay on loopback to one port (a storage emulator's), that can be cut: from <see cref="Cut"/> on, every
/// connection open at the time, and every connection made until <see cref="Heal"/>, passes nothing either way and
/// is never closed. That is a network fault whose connections lost their state on the way (a load balancer or NAT
/// that dropped them): a request sent on one gets no answer, ever, and only a new connection after the fault works.
/// Unlike <see cref="ProcessPause"/>, storage itself keeps answering everyone else, and nothing queued during the
/// fault is answered afterwards. <see cref="LoseAnswers"/> is the same fault on the way back only: requests reach
/// storage and take effect, and their answers go nowhere.
/// </summary>
public sealed class BlackHoleProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Link, bool> _links = new();
    private readonly Task _accepting;
    private volatile bool _cut, _answersLost;
    private long _swallowed;

    private BlackHoleProxy(int target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public static BlackHoleProxy To(int port) => new(port);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Bytes that reached the relay while cut and went nowhere.</summary>
    public long Swallowed => Interlocked.Read(ref _swallowed);

    public void Cut()
    {
        _cut = true;
        foreach (var link in _links.Keys) link.Dead = true;
    }

    /// <summary>From now until <see cref="Heal"/>, and forever on the connections open meanwhile, requests pass and
    /// answers do not.</summary>
    public void LoseAnswers()
    {
        _answersLost = true;
        foreach (var link in _links.Keys) link.AnswersLost = true;
    }

    public void Heal() => (_cut, _answersLost) = (false, false);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            var link = new Link(client) { Dead = _cut, AnswersLost = _answersLost };
            _links[link] = true;
            _ = RunAsync(link);
        }
    }

    private async Task RunAsync(Link link)
    {
        try
        {
            // A connection made while cut reaches nothing: it is accepted, and then silence.
            if (link.Dead)
            {
                await PumpAsync(link, link.Client, link.Server);
                return;
            }
            await link.Server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            await Task.WhenAll(PumpAsync(link, link.Client, link.Server), PumpAsync(link, link.Server, link.Client, answers: true));
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (SocketException)
        {
        }
        finally
        {
            _links.TryRemove(link, out _);
            link.Dispose();
        }
    }

    // Until either side closes. A dead link reads on (so the sender's writes do not block) and forwards nothing; one
    // that loses answers does so from the server's side only.
    private async Task PumpAsync(Link link, Socket from, Socket to, bool answers = false)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
            if (read == 0)
            {
                if (!link.Dead && !(answers && link.AnswersLost) && to.Connected) to.Shutdown(SocketShutdown.Send);
                return;
            }
            if (link.Dead || (answers && link.AnswersLost))
            {
                Interlocked.Add(ref _swallowed, read);
                continue;
            }
            await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var link in _links.Keys) link.Dispose();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    private sealed class Link(Socket client) : IDisposable
    {
        public Socket Client { get; } = client;
        public Socket Server { get; } = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        public volatile bool Dead;
        public volatile bool AnswersLost;

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }
}
