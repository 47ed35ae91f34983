namespace Keystone.Storage;

/// <summary>
/// Whether the state writes of the current call come from an entity leaving memory (Orleans collecting an idle
/// activation). The snapshot storage then asks the entity's bucket to keep the state it writes, or, when nothing
/// changed since the last write, only to keep those same bytes (<see cref="Parking"/>): the idle entity stays in memory
/// as its serialized state (<see cref="WarmStates"/>) rather than as an activation.
/// </summary>
/// <remarks>Async-local: set inside an async method, it holds for what that method awaits and ends as it returns.</remarks>
public static class EntityLeaving
{
    private static readonly AsyncLocal<bool> LeavingNow = new();
    private static readonly AsyncLocal<bool> ParkingNow = new();

    public static bool Active => LeavingNow.Value;

    /// <summary>The state is unchanged since it was last written: keep it, write nothing.</summary>
    public static bool Parking => ParkingNow.Value;

    /// <summary>Runs <paramref name="leave"/> (the entity's last writes) as an entity leaving memory.</summary>
    public static async Task Run(Func<Task> leave)
    {
        LeavingNow.Value = true;
        await leave();
    }

    /// <summary>Runs <paramref name="write"/> (a state write through Orleans' storage bridge) as a park.</summary>
    public static async Task Park(Func<Task> write)
    {
        ParkingNow.Value = true;
        await write();
    }
}
