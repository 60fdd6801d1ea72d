"""The command lines' parser: argparse's, with its errors made short.

A mistyped option should cost one line that says what was wrong (and, for a mistyped choice, what
was probably meant), not a usage block to read through first. Every minicnn command line uses
:class:`ArgumentParser` (``minicnn ...``, ``python -m minicnn.assignment``); sub-parsers take their
parent's class.
"""
import argparse
import difflib


def did_you_mean(value, choices):
    """``"; did you mean 'resnet18'?"`` for the choice closest to a mistyped ``value`` (difflib),
    or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with its errors made short: the one line that matters (a mistyped
    choice gets "did you mean ...?") and where the options are listed, instead of the usage
    block first."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help' for the options)\n")

    def _check_value(self, action, value):  # argparse's check of choices=, plus the suggestion
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {choices})"
                                                 f"{did_you_mean(value, action.choices)}")
