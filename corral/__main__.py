import sys

from corral.cli import main

# The guard matters: vLLM starts its engine in a spawned process, which re-imports __main__.
if __name__ == "__main__":
    sys.exit(main())
