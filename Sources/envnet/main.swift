import EnvNetCommandLine

EnvNetCommand.runMain()
