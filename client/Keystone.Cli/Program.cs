Console.Error.WriteLine("keystone: not yet implemented");
return 1;
