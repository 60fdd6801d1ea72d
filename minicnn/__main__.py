"""``python -m minicnn ...`` is the same as the ``minicnn`` command.

Run from the folder that *holds* the clone (``~/src`` for ``~/src/minicnn``), Python finds the
clone's folder ``./minicnn`` first. An editable install (``pip install -e .``) puts the clone on
``sys.path`` (setup.py's ``package_dir``), and there the real package wins over that folder. Without
an install, or with an editable install made by an older setup.py (an import hook that Python asks
only after ``sys.path``), Python imports the folder as an empty "namespace package" instead of the
real package inside it; every name is then missing ("module 'minicnn' has no attribute
'Tensor'"). That case is detected here and explained instead of failing with a traceback.
"""
import os
import sys


def _imported_the_clone_folder():
    """True when ``minicnn`` was imported as a namespace package (a folder without
    ``__init__.py``), i.e. the repository folder rather than the package."""
    package = sys.modules.get(__package__ or "minicnn")
    return package is not None and getattr(package, "__file__", None) is None


if _imported_the_clone_folder():
    folder = list(sys.modules[__package__ or "minicnn"].__path__)[0]
    print(f"minicnn: Python imported the folder {folder} (the cloned repository) instead of the "
          f"minicnn package, because the current folder ({os.getcwd()}) holds the clone. Change "
          f"into the clone (cd {os.path.basename(folder)}) or any other folder and run the command "
          f"again, or install the clone (pip install -e {folder}), after which minicnn imports "
          f"from any folder; a script started here has the same problem (\"module 'minicnn' has "
          f"no attribute 'Tensor'\").", file=sys.stderr)
    sys.exit(1)

from .cli import main  # noqa: E402  (after the check above, which must run first)

sys.exit(main())
