using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure.Storage.Blobs;
using Keystone.Lake;
using Keystone.Silo.Hosting;
using Microsoft.Extensions.Configuration;

namespace Keystone.UnitTests.Lake;

/// <summary>
/// A query whose lake storage hangs or fails answers "unavailable" while its caller still waits, instead of the caller
/// losing the call after Orleans' 30 s. The storage here is a loopback socket that never answers, or answers 503.
/// </summary>
public sealed class LakeQueryStorageTests : IDisposable
{
    private static readonly DateTimeOffset From = new(2026, 12, 7, 10, 0, 0, TimeSpan.Zero);
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "keystone-lake-storage-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_cache)) Directory.Delete(_cache, recursive: true);
    }

    [Fact]
    public async Task Storage_that_never_answers_makes_the_query_unavailable_within_the_storage_timeout()
    {
        using var silent = new SilentStorage();
        var options = new LakeOptions { StorageTimeout = TimeSpan.FromSeconds(1), CacheDirectory = _cache };
        var engine = new LakeQueryEngine(Container(silent.Port, retries: 20), options);

        // Bounded only so that a regression fails instead of hanging for the SDK's 100 s per try.
        var e = await Assert.ThrowsAsync<LakeUnavailableException>(() => engine.QueryAsync("SELECT count(*) FROM events", From, From.AddHours(1)).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Equal("the lake's storage did not answer within 1 s (Keystone:Lake:StorageTimeout); nothing was queried, try again", e.Message);
        // The accept loop may run a moment after the engine gave up, on a loaded machine.
        Assert.True(SpinWait.SpinUntil(() => silent.Connections > 0, TimeSpan.FromSeconds(10)), "the engine never asked the storage");
    }

    [Fact]
    public async Task Storage_that_fails_the_read_makes_the_query_unavailable_with_the_storage_status()
    {
        using var failing = new SilentStorage("HTTP/1.1 503 Service Unavailable\r\nx-ms-error-code: ServerBusy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        var engine = new LakeQueryEngine(Container(failing.Port, retries: 0, tryTimeout: TimeSpan.FromSeconds(20)), new LakeOptions { CacheDirectory = _cache });

        var e = await Assert.ThrowsAsync<LakeUnavailableException>(() => engine.TopTitlesAsync(From, From.AddHours(1), null, null, 10).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Equal("the lake's storage failed a read (503 ServerBusy); nothing was queried, try again", e.Message);
    }

    [Fact]
    public async Task A_last_try_that_gets_no_answer_makes_the_query_unavailable_before_the_storage_timeout()
    {
        using var silent = new SilentStorage();
        var engine = new LakeQueryEngine(Container(silent.Port, retries: 0), new LakeOptions { StorageTimeout = TimeSpan.FromSeconds(14), CacheDirectory = _cache });

        var e = await Assert.ThrowsAsync<LakeUnavailableException>(() => engine.QueryAsync("SELECT count(*) FROM events", From, From.AddHours(1)).WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.StartsWith("the lake's storage failed a read (", e.Message);
        Assert.EndsWith("); nothing was queried, try again", e.Message);
    }

    [Fact]
    public async Task A_refused_query_is_still_refused_before_any_storage_read()
    {
        using var silent = new SilentStorage();
        var engine = new LakeQueryEngine(Container(silent.Port, retries: 0), new LakeOptions { StorageTimeout = TimeSpan.FromSeconds(1), CacheDirectory = _cache });

        var e = await Assert.ThrowsAsync<ArgumentException>(() => engine.QueryAsync("DROP VIEW events", From, From.AddHours(1)));

        Assert.Contains("only a SELECT", e.Message);
        Assert.Equal(0, silent.Connections);
    }

    [Theory]
    [InlineData("00:00:15", "00:00:10", null)]
    [InlineData("00:00:20", "00:00:10", "Keystone:Lake:StorageTimeout + QueryTimeout must stay below Orleans' response timeout (30 s), got 20 s + 10 s: a caller would lose the call before the query answers.")]
    [InlineData("00:00:00", "00:00:10", "Keystone:Lake:StorageTimeout must be positive.")]
    public void The_storage_timeout_is_checked_at_start(string storage, string query, string? problem)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Keystone:Lake:StorageTimeout"] = storage,
            ["Keystone:Lake:QueryTimeout"] = query,
        }).Build();

        if (problem is null)
        {
            ConfigurationCheck.Validate(configuration);
            return;
        }
        var e = Assert.Throws<KeystoneConfigurationException>(() => ConfigurationCheck.Validate(configuration));
        Assert.Equal(problem, Assert.Single(e.Problems));
    }

    [Fact]
    public void A_storage_request_is_tried_again_within_a_quarter_of_the_storage_timeout()
    {
        Assert.Equal(TimeSpan.FromSeconds(3.75), new LakeOptions().StorageTryTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), new LakeOptions { StorageTimeout = TimeSpan.FromSeconds(2) }.StorageTryTimeout);
    }

    private static BlobContainerClient Container(int port, int retries, TimeSpan? tryTimeout = null)
    {
        var options = new BlobClientOptions { Retry = { MaxRetries = retries, Delay = TimeSpan.FromMilliseconds(50), NetworkTimeout = tryTimeout ?? TimeSpan.FromMilliseconds(300) } };
        return new BlobContainerClient(new Uri($"http://127.0.0.1:{port}/devstoreaccount1/keystone-lake"), options);
    }

    /// <summary>Accepts connections on loopback; answers each request with <paramref name="response"/>, or never.</summary>
    private sealed class SilentStorage : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly List<TcpClient> _open = [];
        private int _connections;

        public SilentStorage(string? response = null)
        {
            _listener.Start();
            _ = AcceptAsync(response);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Connections => Volatile.Read(ref _connections);

        private async Task AcceptAsync(string? response)
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    Interlocked.Increment(ref _connections);
                    lock (_open) _open.Add(client);
                    if (response is not null) _ = AnswerAsync(client, response);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private async Task AnswerAsync(TcpClient client, string response)
        {
            try
            {
                var stream = client.GetStream();
                var buffer = new byte[8192];
                var seen = new StringBuilder();
                while (!seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await stream.ReadAsync(buffer, _stop.Token);
                    if (n == 0) return;
                    seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                await stream.WriteAsync(Encoding.ASCII.GetBytes(response), _stop.Token);
                client.Close();
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_open)
                foreach (var client in _open) client.Dispose();
        }
    }
}
