import argparse
import sys

from model_worker.cli import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m model_worker", description="Corral model worker")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
