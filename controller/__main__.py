import argparse
import sys

from controller.cli import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m controller", description="Corral controller")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
