"""The one domain exception: bad input the user can fix. The CLI turns it into exit code 2."""

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130


class ZipfstageError(Exception):
    """A problem with the user's input or store; its message says what to fix, on one line."""

    exit_code = USAGE_EXIT_CODE
