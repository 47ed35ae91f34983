using System.CommandLine;
using Keystone.Cli;
using Keystone.Cli.Commands;

var globals = new GlobalOptions();
var root = new RootCommand("keystone: simulate, publish and inspect events on an Orleans.Keystone cluster.");
globals.AddTo(root);
root.Subcommands.Add(SimulateCommand.Create(globals));
root.Subcommands.Add(PublishCommand.Create(globals));
root.Subcommands.Add(TailCommand.Create(globals));
root.Subcommands.Add(TopicsCommand.Create(globals));
root.Subcommands.Add(InfoCommand.Create(globals));
root.Subcommands.Add(ReplayCommand.Create(globals));
root.Subcommands.Add(QueryCommand.Create(globals));

using var signal = new ShutdownSignal();
return await CommandRunner.RunAsync(root, args, signal.Token);
