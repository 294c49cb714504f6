import argparse
import sys

from controller.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m controller")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
