"""accelerate launch train.py RECIPE [key=value ...] [--resume latest]  (same as `i2i train`)."""
import sys

from i2i.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
