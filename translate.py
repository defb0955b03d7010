"""python translate.py EXPORT_OR_RUN --input DIR --output DIR [--direction BtoA]  (same as `i2i translate`)."""
import sys

from i2i.cli import main

if __name__ == "__main__":
    sys.exit(main(["translate", *sys.argv[1:]]))
