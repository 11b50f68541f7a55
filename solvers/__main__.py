from solvers.run import cli

cli()
