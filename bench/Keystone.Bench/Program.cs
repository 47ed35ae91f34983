Console.Error.WriteLine("bench: not yet implemented");
return 1;
