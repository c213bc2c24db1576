"""Allow ``python -m zipfstage`` (and ``torchrun -m zipfstage``)."""

from zipfstage.cli import main

if __name__ == "__main__":
    main()
