"""`python -m benchmarks` from the repository root: the same as `weatherpipe bench`."""

from benchmarks.cli import main

main(prog_name="python -m benchmarks")
