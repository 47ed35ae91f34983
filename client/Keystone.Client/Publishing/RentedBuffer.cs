using System.Buffers;

namespace Keystone.Client.Publishing;

/// <summary>
/// A buffer writer over an array rented from a pool (<see cref="ArrayPool{T}.Shared"/> in the publisher): the publisher compresses each batch into
/// one and gives it back once the cluster has answered. A new array per batch (hundreds of kilobytes, on the
/// large-object heap) was the largest allocation the SDK made.
/// </summary>
internal sealed class RentedBuffer(int capacity, ArrayPool<byte> pool) : IBufferWriter<byte>
{
    private byte[] _array = pool.Rent(Math.Max(capacity, 256));
    private int _written;

    public ReadOnlyMemory<byte> Written => _array.AsMemory(0, _written);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_written + count > _array.Length) throw new InvalidOperationException($"advanced past the buffer's {_array.Length} bytes");
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_written);
    }

    /// <summary>Gives the array back. Only once nothing can read <see cref="Written"/> any more.</summary>
    public void Return()
    {
        var array = _array;
        _array = [];
        _written = 0;
        if (array.Length > 0) pool.Return(array);
    }

    private void Ensure(int sizeHint)
    {
        var needed = Math.Max(sizeHint, 1);
        if (_array.Length - _written >= needed) return;
        var bigger = pool.Rent(Math.Max(_array.Length * 2, _written + needed));
        _array.AsSpan(0, _written).CopyTo(bigger);
        pool.Return(_array);
        _array = bigger;
    }
}
