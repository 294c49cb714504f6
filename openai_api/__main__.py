import argparse
import sys

from openai_api.cli import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m openai_api", description="Corral OpenAI API")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
