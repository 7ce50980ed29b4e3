"""`python -m weatherpipe` runs the command line."""

from weatherpipe.cli import main

main()
