import argparse
import sys

from webui.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m webui")
    add_arguments(parser)
    return run(parser.parse_args())


# The guard matters: vLLM starts its engine in a spawned process, which re-imports __main__.
if __name__ == "__main__":
    sys.exit(main())
